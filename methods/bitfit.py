"""BitFit: train only biases — re-introduced, zero-initialised, where T5 has none.

Hugging Face's T5 has no biases at all. Following the paper (footnote 7), BitFit adds one to

* every nn.Linear inside a block: q, k, v, o of self- and cross-attention, the FFN's wi and wo
  (wi_0 and wi_1 for the gated FFN of T5 v1.1 / mT5);
* every layer norm inside a block (T5LayerNorm only scales; the bias is added after the scale);
* the output layer (`model.get_output_embeddings()`),

and trains exactly these biases: not the layer-norm scales, not the two final stack layer norms.
On T5-base that is 280,960 numbers, 0.126 % of the model (paper Table 1).

Other families: GPT-2's linear layers are transformers' ``Conv1D`` and get a bias the same way.
Where a layer already has a bias (BART, BERT, GPT-2, layer norms with a shift), the added zero bias
is trained instead of the existing one: the output is ``W x + b + δ`` with δ starting at 0, whose
gradient is the existing bias's, so training δ is training b (as BitFit does) while the base stays
untouched; `surgery.fold` adds δ into b.

How a bias is added: a zero Parameter ``surgery_bias__<adapter name>`` (``surgery_bias`` in
checkpoints) is registered on the existing module and a forward hook adds it to the
module's output while the adapter is in effect (in a mixed batch, on its examples' rows). No weight is copied or re-created, the module keeps
its class (so T5's own logic — e.g. casting the FFN input to ``wo.weight.dtype`` — is untouched),
and the same mechanism serves nn.Linear, T5LayerNorm and any other family's layer norm. The name
carries the ``surgery_`` prefix, the engine's convention for tensors a method adds to existing
modules: the adapter checkpoint's base fingerprint skips them, so a checkpoint loads into a fresh
base model (a plain ``bias`` would make the fresh base look like another architecture).

>>> import surgery
>>> from transformers import T5Config, T5ForConditionalGeneration
>>> model = T5ForConditionalGeneration(T5Config(d_model=64, d_kv=8, d_ff=128, num_layers=2, num_heads=4, vocab_size=100))
>>> report = surgery.report(surgery.apply(model, "bitfit"))
>>> model.encoder.block[0].layer[0].SelfAttention.q.surgery_bias__default.shape
torch.Size([32])
>>> attention = 3 * 32 + 64                      # q, k, v: heads·d_kv = 32 outputs; o: d_model = 64
>>> encoder_block = attention + 128 + 64 + 2 * 64  # + wi, wo, 2 layer norms
>>> decoder_block = 2 * attention + 128 + 64 + 3 * 64
>>> report.groups["biases"] == 2 * encoder_block + 2 * decoder_block + 100  # + output layer (vocabulary)
True
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from surgery.errors import RecipeError
from surgery.family import ModelDims, ModelFamily
from surgery.method import SPLICED, ModelMethod, describe_quantization, register_method
from surgery.adapter_scope import AdapterScope

BIAS = "surgery_bias"


class AddOutputBias:
    """Forward hook: the module's output plus its bias (broadcast over the last dim) while the adapter is
    in effect; in a mixed batch, only on the rows of the examples that name it."""

    def __init__(self, attribute: str, scope: AdapterScope):
        self.attribute, self.scope = attribute, scope

    def __call__(self, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor | None:
        if self.scope.in_mixed_batch():
            rows = self.scope.row_mask(output.shape[0], output.device, output.dtype)
            if rows is None:
                return None
            return output + rows.view(-1, *([1] * (output.dim() - 1))) * getattr(module, self.attribute)
        if not self.scope.is_active():
            return None
        return output + getattr(module, self.attribute)


def attach_bias(module: nn.Module, size: int, scope: AdapterScope) -> nn.Parameter:
    """Give `module` a zero bias of `size` added to its output; same device and dtype as its weight."""
    attribute = scope.attached(BIAS)
    if attribute in module._parameters:
        raise ValueError(f"{type(module).__name__} already has a {attribute}")
    weight = getattr(module, "weight", None)
    like = weight if isinstance(weight, torch.Tensor) else next(module.parameters())
    bias = nn.Parameter(torch.zeros(size, device=like.device, dtype=like.dtype))
    module.register_parameter(attribute, bias)
    scope.keep(module.register_forward_hook(AddOutputBias(attribute, scope)))
    return bias


def bias_targets(model: nn.Module, family: ModelFamily) -> list[tuple[str, nn.Module, int]]:
    """(qualified name, module, bias size) of every module BitFit gives a bias, in model order.

    Modules other adapters spliced into the blocks are not the base's and get none.
    """
    block_ids = {id(block) for blocks in family.blocks(model).values() for block in blocks}
    targets: list[tuple[str, nn.Module, int]] = []
    seen: set[int] = set()

    def visit(prefix: str, module: nn.Module, inside_block: bool) -> None:
        inside_block = inside_block or id(module) in block_ids
        if inside_block and id(module) not in seen:
            if isinstance(module, nn.Linear):
                targets.append((prefix, module, module.out_features))
                seen.add(id(module))
            elif isinstance(module, Conv1D):  # GPT-2's linear layers (weight stored transposed)
                targets.append((prefix, module, module.nf))
                seen.add(id(module))
            elif isinstance(module, family.layer_norm_classes):
                targets.append((prefix, module, module.weight.shape[-1]))
                seen.add(id(module))
        for name, child in module.named_children():
            if name == SPLICED and inside_block:
                continue
            visit(f"{prefix}.{name}" if prefix else name, child, inside_block)

    visit("", model, False)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if isinstance(head, nn.Linear) and id(head) not in seen:
        name = next(n for n, m in model.named_modules() if m is head)
        targets.append((name, head, head.out_features))
    return targets


@register_method
class BitFit(ModelMethod):
    """Zero-initialised biases in every block's linear layers and layer norms and the output layer; only they train."""

    name = "bitfit"

    def validate_base(self, model: nn.Module, family: ModelFamily) -> None:
        quantized = describe_quantization(model)
        if quantized is None:
            return
        layers = [name for name, module, _ in bias_targets(model, family) if name in set(quantized.quantized_layers)]
        if layers:
            raise RecipeError("method", self.name, valid="a float base (load it without quantization_config)", reason=(
                f"gives each linear layer of the blocks a bias in the dtype of its weight, but {len(layers)} of them "
                f"(e.g. {layers[0]}) are bitsandbytes-quantised with integer weights: this is {quantized}"))

    def transform_model(self, model: nn.Module, family: ModelFamily, dims: ModelDims, scope: AdapterScope) -> None:
        for _, module, size in bias_targets(model, family):
            attach_bias(module, size, scope)

    def trainable_groups(self, model: nn.Module, family: ModelFamily, scope: AdapterScope) -> dict[str, list[str]]:
        attribute = scope.attached(BIAS)
        return {"biases": [name for name, _ in model.named_parameters() if name.rsplit(".", 1)[-1] == attribute]}

    def mixed_batch_refusal(self) -> str | None:
        return None  # a bias is added row by row: each example gets its adapter's (or none)

    def fold_refusal(self) -> str | None:
        return None

    def fold(self, model: nn.Module, family: ModelFamily, scope: AdapterScope) -> Any:
        from .bitfit_fold import fold_biases

        return fold_biases(model, family, scope.attached(BIAS))
