"""The contract between the engine and a method, and the method registry.

The engine owns this contract; methods implement it. A method knows its modules, not graphs.
There are two kinds, and the engine tells them apart by their class (``isinstance(method,
SiteMethod)``), nothing else:

* a `SiteMethod` puts a module at each selected site of the selected blocks (`build_site_module`),
  optionally with one module shared by all of them (`build_shared`, owned once by the model):
  the adapters, PHM/LPHM, low-rank;
* a `ModelMethod` transforms the whole model (`transform_model`): BitFit, prompt tuning,
  Intrinsic-SAID, full fine-tuning. Its recipe names no sites and no layers.

Both share the base `Method`, which says:

* which options a recipe may give (a dataclass, `Method.Options`, each field with a type and,
  for numbers, a range), checked at plan time (`surgery.options.parse_options`); the options
  that set how much the method adds are marked ``SIZE`` (`surgery.options.SIZE`), and the plan
  names one of them when what the recipe adds cannot be allocated;
* what depends on the model (`validate`) or on the base's weights (`validate_base`);
* which parameters it trains besides the modules it inserted (`trainable_groups`);
* whether it can fold into the base weights (`fold_refusal`, `fold`), take part in a mixed batch
  (`mixed_batch_refusal`) and sit beside other adapters (`trains_base_itself`, `one_active_at_a_time`);
* the report's closed-form parameter counts (`closed_form`).

Learning rates and training settings are not a method's business: they live in the runner
(`runners.finetune.protocol`).

Several adapters can live in one model (`surgery.apply(..., name=...)`). The engine hands
`ModelMethod.transform_model` a `surgery.adapter_scope.AdapterScope`: where to put model-level modules
(``scope.container``), the names of attached tensors (``scope.attached``), and whether the
adapter is in effect (``scope.is_active()``) — hooks a method registers act only then, and their
handles go to ``scope.keep(handle)`` so removing the adapter removes them.

The public surface a method may import from the engine is this module, `surgery.adapter_scope`,
`surgery.errors`, `surgery.options`, `surgery.family` and `surgery.substitute` (the engine's one
way to compute a tensor in place of a parameter for one call); a test scans ``methods/`` for any
other. What a method needs to know of the rest is here: `is_added` (which tensor names other
adapters added), `SPLICED` (the child of a block that holds spliced modules) and
`describe_quantization` (whether the base is bitsandbytes-quantised, for `validate_base`).

Adding a method means a subclass of `SiteMethod` or `ModelMethod` decorated with
`@register_method`, plus a recipe YAML naming it. The engine is not edited, and it never imports a
plug-in: the bundled methods (package `methods`) are found through the ``t5_surgery.methods`` entry
point this project installs, and any other package can register its own methods the same way (or
by being imported first).

    get_method_class(name)
      ├─ load_method_plugins     each entry point of the group "t5_surgery.methods", once
      │                          (importing a plug-in runs its @register_method decorators)
      └─ METHODS[name]           or RecipeError naming the registered ones

>>> get_method_class("adapter").name, issubclass(get_method_class("adapter"), SiteMethod)
('adapter', True)
>>> issubclass(get_method_class("bitfit"), ModelMethod)
True
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar

from torch import nn

from .errors import RecipeError, SurgeryError
from .family import ModelDims, ModelFamily
from .naming import SPLICED, is_added
from .quantization import QuantizedBase, describe_quantization
from .adapter_scope import AdapterScope

__all__ = ["METHODS", "PLUGIN_GROUP", "SPLICED", "Method", "ModelMethod", "NoOptions", "QuantizedBase", "SiteContext",
           "SiteMethod", "describe_quantization", "get_method_class", "is_added", "load_method_plugins",
           "register_method", "registered_methods"]

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
    """What every method says (see the module docstring); a method subclasses `SiteMethod` or `ModelMethod`."""

    name: ClassVar[str]
    Options: ClassVar[type] = NoOptions
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

    def validate_base(self, model: nn.Module, family: ModelFamily) -> None:
        """Raise RecipeError (key "method") when the method cannot work on this base model, e.g.
        one quantised with bitsandbytes (`describe_quantization`)."""

    # -- apply time ------------------------------------------------------------------------
    def trainable_groups(self, model: nn.Module, family: ModelFamily, scope: AdapterScope) -> dict[str, list[str]]:
        """Parameters (qualified names) this method trains besides its inserted/shared modules."""
        return {}

    # -- several adapters, mixed batches, folding -----------------------------------------
    def mixed_batch_refusal(self) -> str | None:
        """None when one batch can give each example this adapter or another; else why not (shown to users)."""
        raise NotImplementedError

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


class SiteMethod(Method):
    """A method that puts one module at each selected site (its recipe names `sites` and may name `layers`).

    Each site module maps the site's hidden states (B, T, d_model) to new ones of the same shape; the
    engine splices it into the block's traced graph.

    >>> @register_method
    ... class Gate(SiteMethod):      # x + up(down(x)) at each site; no options (a real one has an Options dataclass)
    ...     name = "doc-gate"
    ...     def build_site_module(self, site, shared):
    ...         d = site.dims.hidden_size
    ...         return GateModule(nn.Linear(d, 4), nn.Linear(4, d))
    >>> class GateModule(nn.Module):
    ...     def __init__(self, down, up):
    ...         super().__init__()
    ...         self.down, self.up = down, up
    ...     def forward(self, x):
    ...         return x + self.up(self.down(x))
    >>> import surgery
    >>> from transformers import T5Config, T5ForConditionalGeneration
    >>> model = T5ForConditionalGeneration(T5Config(d_model=16, d_kv=4, d_ff=32, num_layers=2, num_heads=2, vocab_size=50))
    >>> plan = surgery.plan(model, {"method": "doc-gate", "sites": ["after_ffn"]})
    >>> len(plan.splices), plan.groups["inserted modules"]   # 4 blocks × (16·4 + 4 + 4·16 + 16)
    (4, 592)
    >>> del METHODS["doc-gate"]
    """

    def build_shared(self, dims: ModelDims) -> nn.Module | None:
        """One module shared by all site modules (e.g. Compacter's rule), or None."""
        return None

    def build_site_module(self, site: SiteContext, shared: nn.Module | None) -> nn.Module:
        """The module for one site (`shared`: what `build_shared` returned)."""
        raise NotImplementedError(f"method {self.name!r} must define build_site_module")

    def mixed_batch_refusal(self) -> str | None:
        return None  # a site module's output can be chosen per example


class ModelMethod(Method):
    """A method that transforms the whole model (its recipe names no sites and no layers).

    What it adds goes into ``scope.container``; what it trains, `trainable_groups` names.

    >>> @register_method
    ... class OutputScale(ModelMethod):   # a trained scalar on the output layer's input
    ...     name = "doc-output-scale"
    ...     def transform_model(self, model, family, dims, scope):
    ...         scope.container.output_scale = nn.Parameter(torch.ones(()))
    ...         scale = lambda module, args: (args[0] * scope.container.output_scale,) if scope.is_active() else None
    ...         scope.keep(model.get_output_embeddings().register_forward_pre_hook(scale))
    ...     def trainable_groups(self, model, family, scope):
    ...         return {"output scale": [scope.path("output_scale")]}
    >>> import surgery, torch
    >>> from transformers import T5Config, T5ForConditionalGeneration
    >>> model = T5ForConditionalGeneration(T5Config(d_model=16, d_kv=4, d_ff=32, num_layers=2, num_heads=2, vocab_size=50))
    >>> surgery.report(surgery.apply(model, {"method": "doc-output-scale"})).groups
    {'output scale': 1}
    >>> del METHODS["doc-output-scale"]
    """

    def transform_model(self, model: nn.Module, family: ModelFamily, dims: ModelDims, scope: AdapterScope) -> None:
        """Change `model` for this adapter; put what it adds where `scope` says, and let its hooks act only
        while ``scope.is_active()`` (their handles go to ``scope.keep``)."""
        raise NotImplementedError(f"method {self.name!r} must define transform_model")

    def mixed_batch_refusal(self) -> str | None:
        return f"method {self.name!r} changes the whole model, not a site's output, so it cannot differ per example"


METHODS: dict[str, type[Method]] = {}
_plugins_loaded = False


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: make a method available to recipes under `cls.name`."""
    if not (isinstance(cls, type) and issubclass(cls, (SiteMethod, ModelMethod))):
        raise TypeError(f"{getattr(cls, '__qualname__', cls)!r} cannot be registered as a method: subclass "
                        "surgery.method.SiteMethod (modules at sites) or surgery.method.ModelMethod (a transform of "
                        "the whole model)")
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
    from .recipe import RENAMED_METHODS

    name = RENAMED_METHODS.get(name, name)
    methods = registered_methods()
    if name not in methods:
        raise RecipeError("method", name, valid=sorted(methods))
    return methods[name]
