"""Several adapters on one frozen base: list them, switch between them, switch them off, remove one.

    surgery.apply(model, "compacter++")                 # the first adapter: "default"
    surgery.apply(model, "compacter++", name="rte")     # a second one; now the one in effect and training
    surgery.set_active(model, "default")                # or a list, run in that order at each site
    with surgery.disabled(model): ...                   # the base model's exact outputs
    surgery.remove(model, "rte")                        # removing the last gives back the untouched model

The adapter(s) in effect are also the only ones whose tensors train: `set_active` sets
``requires_grad`` for exactly their trained groups, so an optimizer built after it sees only
theirs, and a training step leaves every other adapter's tensors as they were. (Switch before
wrapping the model for DDP or FSDP, which fix the set of trained tensors when they wrap.)

>>> import torch, surgery
>>> from transformers import T5Config, T5ForConditionalGeneration
>>> model = T5ForConditionalGeneration(T5Config(d_model=128, d_kv=16, d_ff=128, num_layers=1, num_heads=4, vocab_size=50))
>>> state_before = {n: t.clone() for n, t in model.state_dict().items()}
>>> _ = surgery.apply(model, "compacter++"); _ = surgery.apply(model, "adapter", name="rte")
>>> list_adapters(model), active_adapters(model)
(['default', 'rte'], ['rte'])
>>> set_active(model, ["default", "rte"]); active_adapters(model)
['default', 'rte']
>>> remove(model, "rte"); remove(model, "default")
>>> hasattr(model, "surgery"), all(torch.equal(t, state_before[n]) for n, t in model.state_dict().items())
(False, True)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from torch import nn

from .distributed import is_sharded, unwrap
from .errors import SurgeryError
from .family_registry import detect_family
from .groups import freeze_all_but
from .method import Method, get_method_class
from .naming import ADAPTERS, ATTACHED_PREFIX, STATE, container_path
from .options import parse_options
from .base_copies import install_hooks
from .config_record import record_adapters
from .recipe import load_recipe
from .adapter_scope import AdapterScope
from .splice import SplicedBlockMixin, unsplice_adapter
from .substitute import remove_hooks
from .state import AdapterRecord, SurgeryState, surgery_state
from .transaction import all_or_nothing

__all__ = ["active_adapters", "disabled", "list_adapters", "remove", "set_active"]



def list_adapters(model: nn.Module) -> list[str]:
    """The model's adapters, in the order they were applied."""
    state = getattr(unwrap(model), STATE, None)
    return list(state.records) if state is not None else []


def active_adapters(model: nn.Module) -> list[str]:
    """The adapters in effect (and training), in the order they run at each site."""
    return list(surgery_state(unwrap(model)).routing.active)


def method_of(record: AdapterRecord) -> Method:
    """The adapter's method with its options (from its plan; rebuilt from its recipe where there is none)."""
    if record.plan is not None:
        return record.plan.method
    recipe = load_recipe(record.recipe)
    method_class = get_method_class(recipe.method)
    return method_class(parse_options(method_class.Options, recipe.options))


def update_trainable(model: nn.Module, state: SurgeryState) -> None:
    """requires_grad exactly for the trained groups of the adapters in effect."""
    names = {n for adapter in state.routing.active for members in state.record(adapter).groups.values() for n in members}
    freeze_all_but(model, names)


def set_active(model: nn.Module, names: str | Sequence[str]) -> None:
    """Put these adapters in effect (a list: run in that order at each site), and train only theirs.

    An empty list leaves only the base in effect. Two adapters of a method that allows one at a
    time (prompt tuning: two prompts) are refused, as is a name the model does not have.
    """
    inner = unwrap(model)
    state = surgery_state(inner)
    if isinstance(names, (bytes, dict)) or not isinstance(names, (str, Sequence)) \
            or not all(isinstance(name, str) for name in ((names,) if isinstance(names, str) else names)):
        raise SurgeryError(f"set_active(names={names!r}): expected an adapter name or a list of them "
                           f"(the model's adapters: {', '.join(state.records)}; [] for the base alone)")
    chosen = (names,) if isinstance(names, str) else tuple(names)
    for name in chosen:
        state.record(name)
    if len(set(chosen)) != len(chosen):
        raise SurgeryError(f"set_active got an adapter twice: {list(chosen)}")
    by_method: dict[str, list[str]] = {}
    for name in chosen:
        by_method.setdefault(state.record(name).method, []).append(name)
    for method, members in by_method.items():
        if len(members) > 1 and get_method_class(method).one_active_at_a_time:
            raise SurgeryError(f"adapters {members} are all {method!r}, of which one can be in effect at a time "
                               "(two soft prompts would both be prepended, in the order they were applied); pick one")
    with all_or_nothing(inner):
        state.routing.active = chosen
        state.routing.changed()
        update_trainable(inner, state)
    record_adapters(inner)


def _refuse_without_base(state: SurgeryState, what: str) -> None:
    for record in state.records.values():
        if get_method_class(record.method).trains_base_itself or "all" in record.recipe.get("train", ()):
            raise SurgeryError(f"cannot {what}: adapter {record.name!r} (recipe {record.recipe.get('name', '?')!r}) trained "
                               "the base weights themselves and kept no copy of them, so there is no base to go back to")


@contextmanager
def disabled(model: nn.Module) -> Iterator[None]:
    """Within the block no adapter is in effect: the model computes exactly what the base computes."""
    state = surgery_state(unwrap(model))
    _refuse_without_base(state, "disable the adapters")
    state.routing.disabled += 1
    state.routing.changed()
    try:
        yield
    finally:
        state.routing.disabled -= 1
        state.routing.changed()


def scope_of(model: nn.Module, name: str) -> AdapterScope:
    state = surgery_state(model)
    return AdapterScope(name, getattr(state, ADAPTERS)[name], container_path(name), state.routing)


def _owned_by(key: str, name: str) -> bool:
    """Whether the attached tensor or model attribute `key` (``surgery_x__<adapter>``) is `name`'s."""
    return key.startswith(ATTACHED_PREFIX) and key.endswith(f"__{name}")


def take_out(model: nn.Module, name: str) -> None:
    """Every trace of adapter `name` out of `model`: its modules, hooks, attached tensors and copies of
    base tensors. The base tensors themselves were never written, so nothing is put back."""
    state = surgery_state(model)
    family = detect_family(model)
    for blocks in family.blocks(model).values():
        for block in blocks:
            if isinstance(block, SplicedBlockMixin):
                unsplice_adapter(block, name)
    remove_hooks(state.record(name).hooks)
    for module in model.modules():
        for key in [k for k, _ in module.named_parameters(recurse=False) if _owned_by(k, name)]:
            delattr(module, key)
    for key in [k for k, _ in model.named_children() if _owned_by(k, name)]:
        delattr(model, key)
    del getattr(state, ADAPTERS)[name]
    del state.records[name]
    was_active = name in state.routing.active
    state.routing.active = tuple(a for a in state.routing.active if a != name)
    if was_active and not state.routing.active and state.records:
        state.routing.active = (next(iter(state.records)),)  # as PEFT does: the first remaining takes over
    state.routing.changed()
    remove_hooks(state.engine_hooks)
    state.engine_hooks = []
    if state.records:
        state.engine_hooks = install_hooks(model, state)
        update_trainable(model, state)
        return
    for parameter_name, parameter in model.named_parameters():
        parameter.requires_grad_(state.base_requires_grad.get(parameter_name, parameter.requires_grad))
    remove_hooks(state.model_hooks)
    delattr(model, STATE)


def remove(model: nn.Module, name: str) -> None:
    """Delete adapter `name`: its modules, hooks and tensors (its copies of the base tensors it trained).

    The other adapters in effect stay so; where `name` was the only one, the first remaining
    adapter (in the order applied) takes over, as in PEFT. Removing the last adapter gives back the
    untouched model: its classes, state dict, outputs and requires_grad.
    All or nothing, like `apply`.
    """
    if unwrap(model) is not model or is_sharded(model):
        raise SurgeryError(f"the model is wrapped ({type(model).__name__}): remove adapters from the plain model")
    state = surgery_state(model)
    state.record(name)
    _refuse_without_base(state, f"remove adapter {name!r}")
    with all_or_nothing(model):
        take_out(model, name)
    record_adapters(model)
