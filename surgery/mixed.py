"""Mixed batches: forwards and ``generate()`` where every example uses the adapter named for it.

    with surgery.mixed_batch(model, ["rte", "cola", None, "rte"]):      # None: the base
        loss = model(input_ids=ids, labels=labels).loss
        tokens = model.generate(input_ids=ids, num_beams=4)

At each site every adapter runs on the rows of its own examples only (gathered, computed, written
back), and each adapter's own layer norms (`surgery.base_copies`) and BitFit biases apply row by row,
so every example gets what running its adapter alone gives. ``generate`` repeats each example's
rows for beams and returned sequences, and the rows keep their example's adapter through the KV
cache. Methods that change the whole model or the input's length (prompt tuning,
Intrinsic-SAID, full fine-tuning) and adapters that train a tensor other than a layer norm (the
output layer, a head) cannot differ per example: naming one is refused with the reason.

One mechanism for forwards and ``generate`` alike, and no method of the model replaced: the block
sets the model's routing (`surgery.routing`) for everything it runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from torch import nn

from .adapters import method_of
from .distributed import unwrap
from .errors import SurgeryError
from .family_registry import detect_family
from .naming import is_added
from .base_copies import owners_are_layer_norms, trained_base_names
from .state import SurgeryState, surgery_state



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


class RefuseAdapterNamesArgument:
    """Forward pre-hook on a spliced model: ``model(..., adapter_names=[...])`` (PEFT's spelling, and this
    library's before `surgery.mixed_batch`) is refused, where the model's ``**kwargs`` would drop it silently."""

    surgery_engine = True

    def __call__(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if "adapter_names" in kwargs:
            raise SurgeryError("adapter_names= is not an argument of the model: run the batch inside "
                               "`with surgery.mixed_batch(model, adapter_names):` (forwards and generate alike)")


def refuse_adapter_names_argument(model: nn.Module):
    """Register `RefuseAdapterNamesArgument` on `model`; returns its handle."""
    return model.register_forward_pre_hook(RefuseAdapterNamesArgument(), with_kwargs=True)
