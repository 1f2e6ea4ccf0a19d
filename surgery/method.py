"""The contract between the engine and a method, and the method registry.

The engine owns this contract; methods implement it. A method knows its modules, not graphs.
It says:

* which options a recipe may give it (a dataclass, `Method.Options`, each field with a type and,
  for numbers, a range), checked at plan time (`surgery.options.parse_options`);
* for site methods, the module to splice in at one site (`build_site_module`), and optionally
  one module shared by all of them (`build_shared`, owned once by the model);
* for whole-model methods (BitFit, prompt tuning, Intrinsic-SAID), a `transform_model` step;
* which parameters it trains besides the modules it inserted (`trainable_groups`);
* whether it can fold into the base weights (`fold_refusal`, `fold`), take part in a mixed batch
  (`mixed_batch_refusal`) and sit beside other adapters (`trains_base_itself`, `one_active_at_a_time`).

Several adapters can live in one model (`surgery.apply(..., name=...)`). The engine hands the
whole-model steps a `surgery.scope.AdapterScope`: where to put model-level modules
(``scope.container``), the names of attached tensors (``scope.attached``), and whether the
adapter is in effect (``scope.is_active()``) — hooks a method registers act only then, and their
handles go to ``scope.keep(handle)`` so removing the adapter removes them.

Adding a method means a subclass decorated with `@register_method`, plus a recipe YAML naming it.
The engine is not edited, and it never imports a plug-in: the bundled methods (package
`methods`) are found through the ``t5_surgery.methods`` entry point this project installs, and
any other package can register its own methods the same way (or by being imported first).

    get_method_class(name)
      ├─ load_method_plugins     each entry point of the group "t5_surgery.methods", once
      │                          (importing a plug-in runs its @register_method decorators)
      └─ METHODS[name]           or RecipeError naming the registered ones

>>> get_method_class("adapter").name
'adapter'
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar

from torch import nn

from .errors import RecipeError, SurgeryError
from .family import ModelDims, ModelFamily
from .scope import AdapterScope

# Entry-point group through which packages offer methods (pyproject.toml of this project:
# [project.entry-points."t5_surgery.methods"] bundled = "methods").
PLUGIN_GROUP = "t5_surgery.methods"


@dataclass(frozen=True)
class SiteContext:
    """Where a site module goes: stack ("encoder"/"decoder"), block index, site name, sizes."""

    stack: str
    layer: int
    site: str
    dims: ModelDims


@dataclass
class NoOptions:
    """For methods that take no options."""


class Method:
    """Base class of every method. Subclasses set `name` and `Options` and override hooks."""

    name: ClassVar[str]
    Options: ClassVar[type] = NoOptions
    # Methods that splice modules at graph sites; whole-model methods set this False.
    uses_sites: ClassVar[bool] = True
    default_learning_rate: ClassVar[float] = 3e-4
    # Trains the base weights themselves (full fine-tuning): no other adapter can sit beside it, and
    # it keeps no copy of the base (`surgery.disabled` and `surgery.remove` are refused).
    trains_base_itself: ClassVar[bool] = False
    # Two adapters of this method cannot be in effect together (e.g. two soft prompts).
    one_active_at_a_time: ClassVar[bool] = False

    def __init__(self, options: Any):
        self.options = options

    # -- plan time -------------------------------------------------------------------------
    def validate(self, dims: ModelDims, family: ModelFamily) -> None:
        """Raise RecipeError (key "options.<name>") when the options do not fit this model.

        Types and ranges of single options are the Options dataclass's job (`surgery.options`);
        this hook checks what depends on the model (divisors of the hidden size, budgets, ...).
        """

    def size_key(self, dims: ModelDims) -> str:
        """The recipe key that sets most of what this method adds to the model.

        The plan names it when the added tensors would not fit in memory (computed on the meta
        device, before anything is allocated).
        """
        return "options"

    def validate_base(self, model: nn.Module, family: ModelFamily) -> None:
        """Raise RecipeError (key "method") when the method cannot work on this base model, e.g.
        one quantised with bitsandbytes (`surgery.quantization.describe_quantization`)."""

    # -- apply time ------------------------------------------------------------------------
    def build_shared(self, dims: ModelDims) -> nn.Module | None:
        """One module shared by all site modules (e.g. Compacter's rule), or None."""
        return None

    def build_site_module(self, site: SiteContext, shared: nn.Module | None) -> nn.Module:
        raise NotImplementedError(f"method {self.name!r} does not insert modules at sites")

    def transform_model(self, model: nn.Module, family: ModelFamily, dims: ModelDims, scope: AdapterScope) -> None:
        """Whole-model rewrite for methods that do not (only) splice at sites; put what it adds where
        `scope` says, and let its hooks act only while ``scope.is_active()``."""

    def trainable_groups(self, model: nn.Module, family: ModelFamily, scope: AdapterScope) -> dict[str, list[str]]:
        """Parameters (qualified names) this method trains besides its inserted/shared modules."""
        return {}

    # -- several adapters, mixed batches, folding -----------------------------------------
    def mixed_batch_refusal(self) -> str | None:
        """None when one batch can give each example this adapter or another; else why not (shown to users)."""
        if self.uses_sites:
            return None
        return f"method {self.name!r} changes the whole model, not a site's output, so it cannot differ per example"

    def fold_refusal(self) -> str | None:
        """None when `fold` can merge the adapter into the base weights; else why it cannot (shown to users)."""
        return f"method {self.name!r} has no way to merge into the base weights"

    def fold(self, model: nn.Module, family: ModelFamily, scope: AdapterScope) -> Any:
        """Compute what folding writes (may allocate, may fail; the model is unchanged) and return a
        callable that writes it once the engine has taken the adapter out (it must not fail)."""
        raise SurgeryError(self.fold_refusal() or f"method {self.name!r} does not implement fold")

    def closed_form(self, plan: Any) -> list[tuple[str, str, int]]:
        """(component, formula, value) lines for the report, computed from the formula alone."""
        return []


METHODS: dict[str, type[Method]] = {}
_plugins_loaded = False


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: make a method available to recipes under `cls.name`."""
    if cls.name in METHODS and METHODS[cls.name] is not cls:
        raise ValueError(f"method name {cls.name!r} is registered twice ({METHODS[cls.name].__qualname__}, {cls.__qualname__})")
    METHODS[cls.name] = cls
    return cls


def load_method_plugins() -> None:
    """Import every module offered under the entry-point group `PLUGIN_GROUP`, once per process.

    Importing a plug-in runs its `@register_method` decorators. A plug-in that fails to import
    raises here, and the group is scanned again on the next call.
    """
    global _plugins_loaded
    if _plugins_loaded:
        return
    for point in entry_points(group=PLUGIN_GROUP):
        point.load()
    _plugins_loaded = True


def registered_methods() -> dict[str, type[Method]]:
    """Every registered method by name, plug-ins loaded first."""
    load_method_plugins()
    if not METHODS:
        raise SurgeryError(
            f"no methods are registered: the bundled ones are found through the {PLUGIN_GROUP!r} entry point, "
            "which exists once this project is installed (pip install -e .); otherwise import the module that "
            "defines the method (e.g. `import methods`) before planning"
        )
    return METHODS


def get_method_class(name: str) -> type[Method]:
    methods = registered_methods()
    if name not in methods:
        raise RecipeError("method", name, valid=sorted(methods))
    return methods[name]
