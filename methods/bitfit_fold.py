"""Folding BitFit: its biases become the native biases of the linear layers (no hooks at inference).

* A linear layer's bias becomes its own ``bias`` (``nn.Linear`` adds it in the same ``addmm``).
* A layer norm's bias b (added after the scale) moves into the layers that read the layer norm:
  W(w·x̂ + b) = W(w·x̂) + W·b, so each reader's bias grows by W·b — q, k, v after the self-attention
  norm, q after the cross-attention norm (k and v read the encoder), wi (wi_0 and wi_1 when gated)
  after the FFN norm. LongT5's transient-global attention sums its normed input into global tokens
  and normalises those again, so its layer-norm biases cannot move anywhere: that case is refused.
  Other families declare each bias-less norm's readers (`ModelFamily.norm_readers`: Llama's
  input_layernorm → q_proj, k_proj, v_proj; post_attention_layernorm → gate_proj, up_proj).
* Where the layer already has a bias (BART, BERT, GPT-2: biased linears, layer norms with a shift),
  δ is added into it in place; only biases the base's classes have no place for are new.

A plain T5 checkpoint cannot hold the result. T5's linear layers and layer norms have no biases
(``bias=False`` throughout, the output layer included), so transformers' ``from_pretrained``
would drop them as unexpected keys and load a different model. What a plain checkpoint *can*
drop exactly are the key biases: q·(k + b) = q·k + q·b adds the same number to every score of a
query, which the softmax ignores. So a folded BitFit model's ``save_pretrained`` writes a plain
checkpoint only when every other bias is zero, and otherwise refuses, naming what would be lost.
(The output layer's bias is a per-token offset of the logits, e.g. a prior over labels; the layer
norms' shift the residual stream: neither has a counterpart in the stock architecture.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from surgery.errors import SurgeryError
from surgery.family import ModelFamily


def _native_bias(module: nn.Module) -> nn.Parameter | None:
    """The module's own bias (a linear layer's, GPT-2's Conv1D's, a layer norm's shift), if it has one."""
    bias = module._parameters.get("bias")
    return bias if isinstance(bias, nn.Parameter) else None


def _readers(model: nn.Module, norm_name: str, family: ModelFamily) -> list[nn.Linear]:
    """The linear layers that read the output of the layer norm `norm_name` (see the module docstring)."""
    parent_name, _, own = norm_name.rpartition(".")
    parent = model.get_submodule(parent_name)
    if isinstance(parent, family.block_classes) and own in family.norm_readers:
        return [parent.get_submodule(path) for path in family.norm_readers[own]]
    sublayers = [m for m in parent.children() if isinstance(m, family.attention_classes + family.feed_forward_classes)]
    if own != "layer_norm" or len(sublayers) != 1:
        raise SurgeryError(f"BitFit's bias of {norm_name} cannot be folded: only a block's layer norms that feed one "
                           "attention or feed-forward sublayer, or that the family declares readers for "
                           f"(norm_readers of family {family.name!r}), move into their projections (LongT5's "
                           "transient-global attention normalises summed global tokens again, which no bias can "
                           "pass through)")
    sublayer = sublayers[0]
    if isinstance(sublayer, family.feed_forward_classes):
        names = ("wi_0", "wi_1") if hasattr(sublayer, "wi_0") else ("wi",)
    elif "CrossAttention" in type(parent).__name__:
        names = ("q",)
    elif "TransientGlobal" in type(sublayer).__name__:
        raise SurgeryError(f"BitFit's bias of {norm_name} cannot be folded: LongT5's transient-global attention also "
                           "sums this layer norm's output into global tokens and normalises them again")
    else:
        names = ("q", "k", "v")
    return [getattr(sublayer, name) for name in names]


def fold_biases(model: nn.Module, family: ModelFamily, attribute: str) -> Callable[[], None]:
    """Compute every linear layer's folded bias (the model is unchanged); return the step that sets them."""
    added: dict[int, tuple[nn.Linear, torch.Tensor]] = {}

    def add(layer: nn.Linear, value: torch.Tensor) -> None:
        start = added[id(layer)][1] if id(layer) in added else (
            layer.bias.detach().double() if layer.bias is not None else torch.zeros(layer.out_features, dtype=torch.float64,
                                                                                   device=layer.weight.device))
        added[id(layer)] = (layer, start + value.double())

    with torch.no_grad():
        for name, module in model.named_modules():
            bias = module._parameters.get(attribute)
            if bias is None:
                continue
            if isinstance(module, (nn.Linear, Conv1D)) or _native_bias(module) is not None:
                add(module, bias.detach())  # the module's own bias (created for a linear layer without one)
            elif isinstance(module, family.layer_norm_classes):
                for reader in _readers(model, name, family):
                    add(reader, reader.weight.detach().double() @ bias.detach().double())
            else:
                raise SurgeryError(f"BitFit's bias of {name} ({type(module).__name__}) cannot be folded into a weight")
        values = [(layer, total.to(layer.weight.dtype)) for layer, total in added.values()]
    names = {id(m): n for n, m in model.named_modules()}
    # only the biases the base's classes have no place for (a native bias is saved and loaded as ever)
    folded = [f"{names[id(layer)]}.bias" for layer, _ in values if _native_bias(layer) is None]

    def commit() -> None:
        for layer, value in values:
            native = _native_bias(layer)
            if native is not None:
                with torch.no_grad():
                    native.copy_(value)  # in place: a bias tied to another tensor (BERT's MLM head) stays tied
            else:
                layer.bias = nn.Parameter(value, requires_grad=layer.weight.requires_grad)
        if folded and hasattr(type(model), "save_pretrained"):
            model.save_pretrained = PlainCheckpointOfFoldedBiases(model, folded)

    return commit


class PlainCheckpointOfFoldedBiases:
    """`save_pretrained` of a model with BitFit folded in: a plain T5 checkpoint where one can hold it.

    Key biases are dropped (exact: the softmax ignores them), zero biases too; any other bias makes
    it refuse, since transformers' T5 classes have no place for it and would silently drop it.
    """

    def __init__(self, model: nn.Module, folded: list[str]):
        self.model, self.folded = model, folded

    def __call__(self, save_directory: Any, *args: Any, **kwargs: Any) -> Any:
        model = self.model
        parameters = dict(model.named_parameters())
        kept = [n for n in self.folded if n in parameters and not n.endswith(".k.bias") and bool(parameters[n].ne(0).any())]
        if kept:
            shown = ", ".join(kept[:3]) + (f" and {len(kept) - 3} more" if len(kept) > 3 else "")
            raise SurgeryError(
                f"cannot write {type(model).__name__} with BitFit folded in as a plain checkpoint: its classes (T5's "
                f"linear layers, layer norms and output layer) have no biases there, so from_pretrained would drop "
                f"{len(kept)} non-zero bias tensors ({shown}) and load another model. Only T5's key projections' biases "
                "can be left out exactly (softmax ignores them). Save the adapter unfolded instead (surgery.save_adapter before surgery.fold, "
                "or model.save_pretrained with the adapter applied, loaded back by surgery.from_pretrained)")
        layers = [model.get_submodule(n.rsplit(".", 1)[0]) for n in self.folded if n in parameters]
        removed = [(layer, layer.bias) for layer in layers]
        for layer in layers:
            layer.bias = None
        try:
            return type(model).save_pretrained(model, save_directory, *args, **kwargs)
        finally:
            for layer, bias in removed:
                layer.bias = bias
