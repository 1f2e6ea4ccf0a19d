"""Intrinsic-SAID (Aghajanyan et al., 2021): fine-tune in a random d'-dimensional subspace.

Every weight tensor θⱼ of the model becomes

    θⱼ = θⱼ,₀ + λⱼ · Fastfoodⱼ(z)[: numel(θⱼ)]

with θⱼ,₀ the frozen pretrained tensor, z ∈ R^(d' − m) shared by all tensors, one scale λⱼ per
tensor (m of them) and an independent Fastfood projection per tensor (`methods.fastfood`: own
B, Π, G; ⌈numel/L⌉ stacked blocks when the tensor is larger than the padded size L of z).
The trainable numbers are exactly z and λ: d' in total (20,000 in the paper: 0.009 % of T5-base).
z starts at 0 and λ at 1, so at initialisation the model computes exactly what it computed before.

"Every weight tensor" here means every parameter tensor of the model: attention and FFN matrices,
the (tied) embedding, the relative-attention-bias tables and the layer-norm scales — m = 257 on
T5-base, and on T5 v1.1 with an untied output layer one more. A tensor shared by several modules
(T5's embedding, used by both stacks and, when tied, by the output layer) is one tensor with one λ,
so tied weights stay tied. The count of trainable parameters is d' whatever m is, so Table 1's
0.009 % holds for any reading of "weight tensor"; m only sets the smallest valid d' (m + 1).

How the reparametrisation runs: each module owning a parameter gets a forward pre-hook that puts
θ₀ + λ·Δ into the module's ``__dict__`` under the parameter's name — instance attributes win over
``nn.Module.__getattr__``, so the module's own forward reads the new tensor — and a forward hook
(``always_call=True``, so also after an exception) removes it. The registered parameters keep their
names, stay frozen and are never copied or edited; state dicts, tied-weight bookkeeping and the
adapter checkpoint's base fingerprint are untouched. This assumes a parameter is read by the forward
of the module that owns it, which holds for T5 (nn.Linear, nn.Embedding, T5LayerNorm); the tests
check that every λ receives a gradient. Deltas are recomputed at each module call (also at each
generation step): the cost of never holding a dense projection.

The random projections are non-persistent buffers drawn on the CPU from `seed` and the tensor's
index, so the adapter checkpoint holds only z and λ and `load_adapter` regenerates the same
projections on any device. They live in ``model.surgery_fastfood``, outside ``model.surgery``,
because everything under ``model.surgery`` is written to the checkpoint (on T5-base the
projections hold ~3 numbers per model parameter).

>>> import torch, surgery
>>> from transformers import T5Config, T5ForConditionalGeneration
>>> model = T5ForConditionalGeneration(T5Config(d_model=64, d_kv=8, d_ff=128, num_layers=2, num_heads=4, vocab_size=100))
>>> m = len(list(model.parameters()))
>>> report = surgery.apply(model, {"method": "intrinsic_said", "options": {"dimension": 500}})
>>> report.trainable, model.surgery.intrinsic.z.numel() == 500 - m
(500, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from surgery.errors import RecipeError
from surgery.family import ModelDims, ModelFamily
from surgery.method import Method, register_method
from surgery.naming import STATE
from surgery.options import require
from surgery.quantization import describe_quantization

from .fastfood import Fastfood

PROJECTIONS = "surgery_fastfood"  # model attribute holding the per-tensor projections (not checkpointed)


def tensor_seed(seed: int, index: int) -> int:
    """The seed of tensor `index`'s projection: distinct per tensor, fixed by the recipe's seed."""
    return (seed * 1_000_003 + index) % (2**63)


class IntrinsicSubspace(nn.Module):
    """The trained numbers: z (d' − m, starts at 0) and one scale λ per weight tensor (m, start at 1)."""

    def __init__(self, tensor_names: list[str], dimension: int, device: torch.device, dtype: torch.dtype):
        super().__init__()
        self.tensor_names = list(tensor_names)
        self.z = nn.Parameter(torch.zeros(dimension - len(tensor_names), device=device, dtype=dtype))
        self.scales = nn.Parameter(torch.ones(len(tensor_names), device=device, dtype=dtype))

    def weight(self, index: int, base: torch.Tensor, projection: Fastfood) -> torch.Tensor:
        """θ₀ + λ · Fastfood(z), shaped like θ₀ and in its dtype."""
        delta = projection(self.z).view(base.shape)
        return base + (self.scales[index] * delta).to(base.dtype)

    def extra_repr(self) -> str:
        return f"dimension={self.z.numel() + self.scales.numel()}, z={self.z.numel()}, tensors={self.scales.numel()}"


class SubstituteIntrinsicWeights:
    """Forward pre-hook: the module's own forward sees θ₀ + λ·Δ instead of its parameters."""

    def __init__(self, subspace: IntrinsicSubspace, projections: nn.ModuleList, entries: list[tuple[str, int]]):
        self.subspace, self.projections, self.entries = subspace, projections, entries

    def __call__(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        for name, index in self.entries:
            module.__dict__[name] = self.subspace.weight(index, module._parameters[name], self.projections[index])


class RestoreParameters:
    """Forward hook (always called): remove the substitutes, so attribute access finds the parameters again."""

    def __init__(self, names: list[str]):
        self.names = names

    def __call__(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        for name in self.names:
            module.__dict__.pop(name, None)


@dataclass
class IntrinsicSAIDOptions:
    """Options of the `intrinsic_said` method."""

    dimension: int = 20000  # d': z (d' − m numbers) plus one λ per weight tensor (m)
    seed: int = 0           # seeds every tensor's Fastfood projection


@register_method
class IntrinsicSAID(Method):
    """θ = θ₀ + λⱼ · Fastfoodⱼ(z) for every parameter tensor; only z and λ train (d' numbers)."""

    name = "intrinsic_said"
    Options = IntrinsicSAIDOptions
    options: IntrinsicSAIDOptions
    uses_sites = False
    default_learning_rate = 3e-2

    def validate(self, dims: ModelDims, family: ModelFamily) -> None:
        # The bound that depends on the number of tensors is checked in transform_model, which the
        # plan's dry run executes on a meta replica — still before the real model is touched.
        require(self.options.dimension >= 2, "options.dimension", self.options.dimension, "an integer ≥ 2")

    def validate_base(self, model: nn.Module, family: ModelFamily) -> None:
        quantized = describe_quantization(model)
        if quantized is not None:
            covered = quantized.total_tensors - len(quantized.integer_tensors)
            raise RecipeError("method", self.name, valid="a float base (load it without quantization_config)", reason=(
                f"reparametrises every weight tensor, but it could cover only {covered} of the {quantized.total_tensors} "
                f"here: this is {quantized}, and integer tensors cannot take θ₀ + λ·P·z"))

    def transform_model(self, model: nn.Module, family: ModelFamily, dims: ModelDims) -> None:
        d = self.options.dimension
        # named_parameters() lists a shared tensor once: tied weights get one index, one λ.
        tensors = [(name, p) for name, p in model.named_parameters()
                   if not name.startswith(f"{STATE}.") and p.is_floating_point()]
        m = len(tensors)
        if d < m + 1:
            raise RecipeError("options.dimension", d, valid=f"an integer ≥ {m + 1}",
                              reason=f"is less than the number of weight tensors ({m}) + 1: Intrinsic-SAID spends "
                                     f"one λ on each of the {m} tensors and needs at least one coordinate of z")
        self.num_tensors = m
        reference = tensors[0][1]
        device = reference.device
        subspace = IntrinsicSubspace([name for name, _ in tensors], d, device, reference.dtype)
        getattr(model, STATE).add_module("intrinsic", subspace)
        projections = nn.ModuleList(
            Fastfood(d - m, p.numel(), seed=tensor_seed(self.options.seed, index), device=device)
            for index, (_, p) in enumerate(tensors)
        )
        model.add_module(PROJECTIONS, projections)

        index_of = {id(p): index for index, (_, p) in enumerate(tensors)}
        for _, module in model.named_modules():
            entries = [(name, index_of[id(p)]) for name, p in module._parameters.items()
                       if p is not None and id(p) in index_of]
            if entries:
                module.register_forward_pre_hook(SubstituteIntrinsicWeights(subspace, projections, entries))
                module.register_forward_hook(RestoreParameters([name for name, _ in entries]), always_call=True)

    def trainable_groups(self, model: nn.Module, family: ModelFamily) -> dict[str, list[str]]:
        return {"intrinsic subspace": [f"{STATE}.intrinsic.z", f"{STATE}.intrinsic.scales"]}

    def closed_form(self, plan: Any) -> list[tuple[str, str, int]]:
        d, m = self.options.dimension, getattr(self, "num_tensors", None)
        if m is None:
            return [("intrinsic subspace", "d'", d)]
        return [("intrinsic subspace", f"d' = {d - m:,} (z) + {m} (λ)", d)]
