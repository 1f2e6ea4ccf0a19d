"""Mixed batches: one forward or ``generate()`` where every example uses the adapter named for it.

    model(input_ids=ids, labels=labels, adapter_names=["rte", "cola", None, "rte"])   # None: the base
    model.generate(input_ids=ids, num_beams=4, adapter_names=["rte", "cola", None, "rte"])
    with surgery.mixed_batch(model, ["rte", "cola", None, "rte"]): ...

At each site every adapter runs on the rows of its own examples only (gathered, computed, written
back), and each adapter's own layer norms (`surgery.base_copies`) and BitFit biases apply row by row,
so every example gets what running its adapter alone gives. ``generate`` repeats each example's
rows for beams and returned sequences, and the rows keep their example's adapter through the KV
cache. Methods that change the whole model or the input's length (prompt tuning,
Intrinsic-SAID, full fine-tuning) and adapters that train a tensor other than a layer norm (the
output layer, a head) cannot differ per example: naming one is refused with the reason.

`surgery.apply` gives every spliced model the ``adapter_names`` argument (a forward pre-hook
and a ``generate`` that accept it); `surgery.remove` takes them away with the last adapter.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import nn

from .adapters import ON_LAST_REMOVED, method_of
from .distributed import unwrap
from .errors import SurgeryError
from .families import detect_family
from .naming import is_added
from .base_copies import owners_are_layer_norms, trained_base_names
from .plan import AFTER_APPLY
from .state import SurgeryState, surgery_state

ARGUMENT = "adapter_names"


def check_mixed(model: nn.Module, state: SurgeryState, names: Sequence[str | None]) -> tuple[str | None, ...]:
    """The names as a tuple, each an adapter that can take part in a mixed batch, or a SurgeryError saying why not."""
    if isinstance(names, str) or not isinstance(names, Sequence) or not names:
        raise SurgeryError(f"adapter_names must be a list with one adapter name (or None, for the base) per example; "
                           f"got {names!r}")
    family = detect_family(model)
    for name in dict.fromkeys(n for n in names if n is not None):
        record = state.record(name)
        reason = method_of(record).mixed_batch_refusal()
        if reason is None:
            base = [n for members in record.groups.values() for n in members if not is_added(n)]
            copies = [n for n, owners in trained_base_names(state).items() if name in owners]
            others = owners_are_layer_norms(model, base + copies, family.layer_norm_classes)
            if others:
                reason = (f"it trains its own {others[0]} (not a layer norm), which one batch cannot vary per example "
                          "(a layer norm's weight can: it multiplies each row)")
        if reason is not None:
            raise SurgeryError(f"adapter {name!r} (recipe {record.recipe.get('name', '?')!r}) cannot take part in a mixed "
                               f"batch: {reason}")
    return tuple(names)


@contextmanager
def mixed_batch(model: nn.Module, adapter_names: Sequence[str | None]) -> Iterator[None]:
    """Within the block, example i of every batch runs adapter ``adapter_names[i]`` (None: the base)."""
    inner = unwrap(model)
    state = surgery_state(inner)
    names = check_mixed(inner, state, adapter_names)
    routing = state.routing
    previous = routing.examples
    routing.examples = names
    routing.changed()
    try:
        yield
    finally:
        routing.examples = previous
        routing.changed()


def _batch_size(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
    for value in (*args[:1], kwargs.get("input_ids"), kwargs.get("inputs"), kwargs.get("inputs_embeds"),
                  kwargs.get("decoder_input_ids")):
        if isinstance(value, torch.Tensor):
            return value.shape[0]
    return None


def _checked(names: Sequence[str | None], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Sequence[str | None]:
    batch = _batch_size(args, kwargs)
    if batch is not None and isinstance(names, Sequence) and not isinstance(names, str) and len(names) != batch:
        raise SurgeryError(f"adapter_names names {len(names)} examples, but the batch has {batch}: give one name "
                           "(or None) per example")
    return names


class AdapterNamesArgument:
    """Forward pre-hook (with kwargs) and forward hook: ``model(..., adapter_names=[...])`` is a mixed batch."""

    def __init__(self) -> None:
        self.open: list[ExitStack] = []

    def __getstate__(self) -> dict[str, Any]:
        return {"open": []}

    def before(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]):
        if ARGUMENT not in kwargs:
            self.open.append(ExitStack())
            return None
        kwargs = dict(kwargs)
        names = kwargs.pop(ARGUMENT)
        stack = ExitStack()
        if names is not None:
            stack.enter_context(mixed_batch(module, _checked(names, args, kwargs)))
        self.open.append(stack)
        return args, kwargs

    def after(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if self.open:
            self.open.pop().close()


class GenerateWithAdapterNames:
    """``model.generate(..., adapter_names=[...])``: transformers' generate inside `mixed_batch`."""

    def __init__(self, model: nn.Module):
        self.model = model

    def __call__(self, *args: Any, adapter_names: Sequence[str | None] | None = None, **kwargs: Any) -> Any:
        model = self.model
        if adapter_names is None:
            return type(model).generate(model, *args, **kwargs)
        with mixed_batch(model, _checked(adapter_names, args, kwargs)):
            return type(model).generate(model, *args, **kwargs)


_MARK = "_surgery_adapter_names"


def install(model: nn.Module) -> None:
    """Give a spliced model the ``adapter_names`` argument (once; done by every `surgery.apply`)."""
    if getattr(model, _MARK, None) is not None:
        return
    argument = AdapterNamesArgument()
    before = model.register_forward_pre_hook(argument.before, with_kwargs=True)
    after = model.register_forward_hook(argument.after, always_call=True)
    model.__dict__[_MARK] = (argument, before, after)   # the hooks' handles: uninstall removes them
    if hasattr(type(model), "generate"):
        model.generate = GenerateWithAdapterNames(model)


def uninstall(model: nn.Module) -> None:
    installed = model.__dict__.pop(_MARK, None)
    if installed is None:
        return
    _, before, after = installed
    before.remove()
    after.remove()
    if isinstance(model.__dict__.get("generate"), GenerateWithAdapterNames):
        del model.__dict__["generate"]


AFTER_APPLY.append(install)
ON_LAST_REMOVED.append(uninstall)
