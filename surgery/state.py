"""What surgery remembers about a model: ``model.surgery`` (`SurgeryState`) and one record per adapter.

``model.surgery.adapters.<name>`` holds adapter `name`'s model-level modules (``shared``,
``prompt``, ``intrinsic``) and its copies of base tensors (``base``, `surgery.base_copies`), the
first adapter's (``"default"``) like any other's; and as plain attributes:

* ``records`` — name → `AdapterRecord` (recipe, trained groups, plan, hook handles), in the order applied;
* ``routing`` — which adapters are in effect (`surgery.routing.Routing`);
* ``engine_hooks`` — the handles of the substitutions that make modules read the copies in effect;
* ``base_requires_grad`` — the flags before the first apply, given back when the last adapter goes.

``model.surgery.recipe`` and ``model.surgery.groups`` are the default adapter's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from .distributed import unwrap
from .errors import SurgeryError
from .naming import DEFAULT_ADAPTER, STATE
from .plan_record import Plan
from .routing import Routing


@dataclass
class AdapterRecord:
    """One adapter of a model: its recipe (as stored in checkpoints), trained groups (live names) and plan."""

    name: str
    recipe: dict[str, Any]
    groups: dict[str, list[str]]
    method: str
    plan: Any = None
    hooks: tuple = ()   # handles of the hooks its method registered (`AdapterScope.keep`); removing the adapter removes them


class SurgeryState(nn.Module):
    """Owns model-level additions (e.g. Compacter's shared rule) and remembers every adapter."""

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, AdapterRecord] = {}
        self.routing = Routing(active=())
        self.base_requires_grad: dict[str, bool] = {}
        # Handles of the hooks that substitute adapters' copies of base tensors (`surgery.base_copies`); always
        # replaced by a new list, never changed in place (a rollback puts the old list back).
        self.engine_hooks: list = []
        # Handles of the hooks on the model itself while it has adapters (`surgery.mixed`'s refusal of
        # an adapter_names= argument), removed with the last adapter.
        self.model_hooks: list = []

    def record(self, name: str) -> AdapterRecord:
        if name not in self.records:
            raise SurgeryError(f"the model has no adapter named {name!r}; its adapters: {', '.join(self.records) or 'none'}")
        return self.records[name]

    @property
    def recipe(self) -> dict[str, Any]:
        """The default adapter's recipe."""
        return self.record(DEFAULT_ADAPTER).recipe

    @recipe.setter
    def recipe(self, value: dict[str, Any]) -> None:
        self.record(DEFAULT_ADAPTER).recipe = value

    @property
    def groups(self) -> dict[str, list[str]]:
        """The default adapter's trained groups (parameter names)."""
        return self.record(DEFAULT_ADAPTER).groups

    @groups.setter
    def groups(self, value: dict[str, list[str]]) -> None:
        self.record(DEFAULT_ADAPTER).groups = value


def surgery_state(model: nn.Module) -> SurgeryState:
    state = getattr(model, STATE, None)
    if state is None:
        raise SurgeryError("no surgery was applied to this model")
    return state


def resolve_adapter(model: nn.Module, name: str | None, *, action: str = "use") -> str:
    """The adapter `name` means: given, or (None) the one in effect, or the only one; else a clear error."""
    state = surgery_state(model)
    if name is not None:
        state.record(name)
        return name
    if len(state.records) == 1:
        return next(iter(state.records))
    active = [a for a in state.routing.active if a in state.records]
    if len(active) == 1:
        return active[0]
    raise SurgeryError(f"the model has {len(state.records)} adapters ({', '.join(state.records)}) and "
                       f"{'none' if not active else len(active)} active: say which one to {action} with name=")


def plan_of(model: nn.Module, name: str | None = None) -> Plan:
    """The plan adapter `name` (default: the one in effect, or the only one) was applied with.

    >>> from surgery import apply
    >>> from transformers import T5Config, T5ForConditionalGeneration
    >>> model = apply(T5ForConditionalGeneration(T5Config(d_model=32, d_kv=8, d_ff=32, num_layers=1, num_heads=4, vocab_size=20)), "adapter")
    >>> plan_of(model).method.name, plan_of(model, "default").recipe.name
    ('adapter', 'adapter')
    """
    inner = unwrap(model)
    record = surgery_state(inner).record(resolve_adapter(inner, name))
    if record.plan is None:
        raise SurgeryError(f"adapter {record.name!r} has no plan recorded (it was not applied by surgery.apply)")
    return record.plan
