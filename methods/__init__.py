"""Methods: the modules that get spliced in, and whole-model rewrites.

Importing this package registers every bundled method (see `methods.base.register_method`).
"""

from . import adapter, full_finetune  # noqa: F401  (registration side effect)
from . import bitfit, intrinsic_said, prompt_tuning  # noqa: F401  (registration side effect)
from .base import METHODS, Method, SiteContext, get_method_class, register_method

__all__ = ["METHODS", "Method", "SiteContext", "get_method_class", "register_method"]
