"""Methods: the modules that get spliced in, and whole-model rewrites.

Importing this package imports every module in it, so each bundled method registers itself
(`methods.base.register_method`): a new method is a new module here plus a recipe YAML file.
"""

import importlib
import pkgutil

from .base import METHODS, Method, SiteContext, get_method_class, register_method

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["METHODS", "Method", "SiteContext", "get_method_class", "register_method"]
