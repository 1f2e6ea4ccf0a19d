"""Folding: merge an adapter into the base weights, for inference at the base's cost.

`fold(model)` asks the adapter's method how (`Method.fold`) and then takes the adapter out of the
model (`surgery.adapters.take_out`); the adapter's own copies of base tensors it trained (layer
norms) are written into the base tensors first. What folds:

* **Intrinsic-SAID** — θ₀ + λ·P·z written into every reparametrised tensor, computed by the hooks'
  own function, so the folded model computes bit for bit what the unfolded one does; the output
  layer as the recipe set it (frozen: untied from a tied embedding, keeping θ₀). A plain
  ``save_pretrained`` / ``from_pretrained`` round trip gives the same model.
* **BitFit** — every bias becomes the native bias of a linear layer, a layer norm's moved into
  the projections that read it (`methods.bitfit_fold`): no hooks, the same function up to float
  rounding. T5's stock classes have no biases, so its ``save_pretrained`` writes a plain checkpoint
  only where every bias but the key projections' (which the softmax ignores) is zero, and
  otherwise refuses with the reason.
* **full fine-tuning** — the trained weights are the base already: only the surgery goes.

All or nothing, whatever the method: the model's structure is snapshotted (`surgery.transaction`)
and every base tensor the method's write step changes is copied just before it is written, so an
interruption or error mid-write puts back the unfolded model exactly.

Nonlinear adapters (Adapter, Compacter and the rest: ``x + up(act(down(x)))``) and prompt
tuning (extra input positions, no weight) are refused with the reason, as is a model holding
several adapters (folding one changes the base weights every other adapter was trained on).

>>> import torch, surgery
>>> from transformers import T5Config, T5ForConditionalGeneration
>>> model = T5ForConditionalGeneration(T5Config(d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4, vocab_size=50)).eval()
>>> _ = surgery.apply(model, {"method": "intrinsic-said", "options": {"dimension": 100}})
>>> with torch.no_grad(): _ = model.surgery.adapters.default.intrinsic.z.normal_()
>>> ids = torch.tensor([[5, 6, 7]])
>>> before = model(input_ids=ids, decoder_input_ids=ids).logits
>>> surgery.fold(model)
>>> hasattr(model, "surgery"), torch.equal(model(input_ids=ids, decoder_input_ids=ids).logits, before)
(False, True)
"""

from __future__ import annotations

from torch import nn

from .adapters import method_of, scope_of, take_out
from .base_copies import write_into_base
from .config_record import record_adapters
from .distributed import is_sharded, unwrap
from .errors import SurgeryError
from .family_registry import detect_family
from .method import SiteMethod
from .state import surgery_state
from .transaction import all_or_nothing


def fold_refusal(model: nn.Module, name: str) -> str | None:
    """Why adapter `name` of `model` cannot be folded (None: it can)."""
    return method_of(surgery_state(model).record(name)).fold_refusal()


def fold(model: nn.Module, name: str | None = None) -> None:
    """Merge the model's adapter into its base weights and take the surgery out (see the module docstring).

    `name`: the adapter (default: the only one). All or nothing: a refusal or a failure leaves the
    model as it was.
    """
    if unwrap(model) is not model or is_sharded(model):
        raise SurgeryError(f"the model is wrapped ({type(model).__name__}): fold the plain model")
    state = surgery_state(model)
    if len(state.records) > 1:
        raise SurgeryError(f"the model holds {len(state.records)} adapters ({', '.join(state.records)}): folding one writes "
                           "it into the base weights every other adapter was trained on; remove the others first "
                           "(surgery.remove), or fold a copy of the model (copy.deepcopy) per adapter")
    name = next(iter(state.records)) if name is None else name
    record = state.record(name)
    method = method_of(record)
    reason = method.fold_refusal()
    if reason is not None:
        raise SurgeryError(f"cannot fold adapter {name!r} (recipe {record.recipe.get('name', '?')!r}): {reason}")
    if isinstance(method, SiteMethod):
        raise SurgeryError(f"cannot fold adapter {name!r}: method {record.method!r} inserts modules at sites")
    with all_or_nothing(model) as snapshot:
        with snapshot.recording_writes():  # every write into the base is put back on failure
            write_into_base(model, state, name)  # the adapter's trained copies (layer norms) become the base's
        write = method.fold(model, detect_family(model), scope_of(model, name))  # computes; may fail
        take_out(model, name)
        with snapshot.recording_writes():
            write()
    record_adapters(model)
