"""Intrinsic-SAID (Aghajanyan et al., 2021): fine-tune in a random d'-dimensional subspace.

Every weight tensor θⱼ of the model becomes

    θⱼ = θⱼ,₀ + λⱼ · Pⱼ z,      Pⱼ z = cⱼ · Fastfoodⱼ(z)[: numel(θⱼ)]

with θⱼ,₀ the frozen pretrained tensor, z ∈ R^(d' − m) shared by all tensors, one scale λⱼ per
tensor (m of them) and an independent Fastfood projection per tensor (`methods.fastfood`: own
B, Π, G; ⌈numel/L⌉ stacked blocks when the tensor is larger than the padded size L of z).
The trainable numbers are exactly z and λ: d' in total (20,000 in the paper: 0.009 % of T5-base).
z starts at 0 and λ at 1, so at initialisation the model computes exactly what it computed before.

The scale cⱼ makes each projection norm-preserving, ‖Pⱼ z‖ ≈ ‖z‖ for every tensor
(``projection_scale: norm_preserving``, the default): the authors' code divides each tensor's
Fastfood output by √(L·ΣG²)·√(N/L) (rabeehk/compacter, seq2seq/projections/intrinsic.py), and the
paper's learning rates (3e-2, Table 4; 3e-3 on SuperGLUE, Table 11) were tuned with that scale.
Without it (``unit_blocks``) a tensor of N entries moves √(N/L) times as far as z: 27× on
T5-base's embedding, so the same learning rate would mean something else.

"Every weight tensor" here means every parameter tensor of the model: attention and FFN matrices,
the embedding, the relative-attention-bias tables and the layer-norm scales (m = 257 on T5-base),
except the output layer, which stays frozen as the paper's §5 says for all methods
(``output_layer: frozen``, the default). With T5 v1.0's tied embedding the output layer *is* the
embedding matrix; the authors' code then moves the embedding and leaves the output layer at θ₀:
its hook replaces ``shared.weight`` (used by both stacks) with θ₀ + λΔ while ``lm_head`` keeps the
original frozen parameter. We do the same: the input embedding of both stacks reads θ₀ + λΔ, the
output layer reads θ₀ (one tensor, one λ, m unchanged). An untied output layer (T5 v1.1, mT5) gets
no projection and no λ. ``output_layer: in_subspace`` reparametrises the output layer too (a tied
one then stays tied). To *train* the output layer directly (paper Table 7), add ``output_layer``
to the recipe's ``train`` list: its tensor then trains, and the embedding still adds λΔ on top.
The count of trainable parameters is d' whatever m is, so Table 1's 0.009 % holds for any reading
of "weight tensor"; m only sets the smallest valid d' (m + 1).

Two places where we follow the paper rather than the authors' code: z has d' − m entries and λ m
(the code keeps one more coordinate back: d' − m − 1), and every projection reads all of z (the
code pads z to the tensor's own power of two, which for a tensor smaller than z keeps only z's first
coordinates).

How the reparametrisation runs: each module owning a parameter gets a substitution
(`surgery.substitute`, the engine's one mechanism for this): for each call, the module's own
forward reads θ₀ + λ·Δ in place of the parameter. The registered parameters keep their
names, stay frozen and are never copied or edited; state dicts, tied-weight bookkeeping and the
adapter checkpoint's base fingerprint are untouched. This assumes a parameter is read by the forward
of the module that owns it, which holds for T5 (nn.Linear, nn.Embedding, T5LayerNorm); the tests
check that every λ receives a gradient. In training, deltas are recomputed at each module call:
the cost of never holding a dense projection. In eval mode without gradients (generation) each
θ is computed once and reused until z, λ or θ₀ change (a copy of every reparametrised tensor while
evaluating; train mode frees it); `surgery.fold` writes θ into the base weights instead.

θ is computed by `methods.fastfood.update` block by block: no whole Δ exists beside θ, and the
backward keeps only z and λ, computing Pⱼᵀ·(∂L/∂θⱼ) once per call for both gradients. The consumer
of θ — e.g. nn.Linear, which saves its weight for the input's gradient — does not keep it either:
during the module's call a saved-tensor hook (`RecomputeInBackward`) stores a recipe instead, and
the backward recomputes θ from z and λ (tensors of at least one Fastfood block; a layer norm's θ is
smaller than the block that would remake it and is kept). So between forward and backward no θ of
the model is held — at the cost of one more projection per reparametrised tensor in the backward.
An embedding lookup (a plain nn.Embedding, `lookup_rows`) reads only the rows of its ids, so in
training it gets θ₀ + λ·P·z at those rows only and θ₀ elsewhere (`methods.fastfood_rows`, version 3):
the values it reads and the gradient it sends are those of the whole θ, at a fraction of the cost
(T5-small's shared embedding is 27 % of the model's entries). The eval-mode cache and `fold` compute
the whole θ.

The random projections are drawn on the CPU from `seed` and the tensor's index, so the adapter
checkpoint holds only z and λ and `load_adapter` regenerates the same projections on any device.
``fastfood_version`` says how: 3 (the bundled recipe) draws G, Π and B once per tensor (per L blocks),
holds them (9 bytes × L per tensor) and gives each block its own Walsh sign pattern, so a block
costs one Hadamard transform each way (`methods.fastfood_walsh`); 2 draws each block's B, Π, G from
a generator seeded per (tensor, block) whenever the block is used and holds nothing; 1 (a recipe
without the key: every checkpoint written before the key existed) draws each tensor's from one
generator and holds them as non-persistent buffers, ~3 numbers per model parameter. The projections live in
``model.surgery_fastfood``, outside ``model.surgery``, because everything under ``model.surgery`` is
written to the checkpoint.

>>> import torch, surgery
>>> from transformers import T5Config, T5ForConditionalGeneration
>>> model = T5ForConditionalGeneration(T5Config(d_model=64, d_kv=8, d_ff=128, num_layers=2, num_heads=4, vocab_size=100))
>>> m = len(list(model.parameters()))
>>> report = surgery.report(surgery.apply(model, {"method": "intrinsic-said", "options": {"dimension": 500}}))
>>> report.trainable, model.surgery.adapters.default.intrinsic.z.numel() == 500 - m
(500, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from surgery.errors import RecipeError
from surgery.family import ModelDims, ModelFamily
from surgery.method import ModelMethod, describe_quantization, is_added, register_method
from surgery.options import INT64_MAX, SIZE, Annotated, Range
from surgery.adapter_scope import AdapterScope
from surgery.substitute import SubstituteCache, substitute

from .fastfood import Fastfood
from .fastfood_rows import supports_rows, update_rows
from .said_recompute import recompute_in_backward

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
        """θ₀ + λ · Fastfood(z), shaped like θ₀ and in its dtype (`methods.fastfood.update`: computed
        block by block; its backward keeps no Δ)."""
        return projection(self.z, self.scales[index], base)

    def weight_rows(self, index: int, base: torch.Tensor, projection: Fastfood, rows: torch.Tensor) -> torch.Tensor:
        """θ for a lookup of `rows` (`methods.fastfood_rows.update_rows`): those rows θ₀ + λ·P·z, the others θ₀."""
        return update_rows(self.z, self.scales[index], base, projection, rows)

    def extra_repr(self) -> str:
        return f"dimension={self.z.numel() + self.scales.numel()}, z={self.z.numel()}, tensors={self.scales.numel()}"


def lookup_rows(module: nn.Module, attribute: str, args: tuple[Any, ...]) -> torch.Tensor | None:
    """The rows of `attribute` this call reads, when that is all it reads: the ids given to an nn.Embedding
    whose forward is nn.Embedding's own (a lookup; no max_norm, which would rewrite the weight); else None."""
    if attribute != "weight" or not isinstance(module, nn.Embedding) or type(module).forward is not nn.Embedding.forward:
        return None
    ids = args[0] if args else None
    if module.max_norm is not None or not isinstance(ids, torch.Tensor) or ids.is_floating_point() or ids.is_complex():
        return None
    return ids


class IntrinsicWeights:
    """The substitution (`surgery.substitute`) for one module: its own forward sees θ₀ + λ·Δ instead of its
    parameters, while the adapter is in effect.

    θ₀ is the value in effect (the parameter, or the copy of the adapter in effect that trains it:
    `surgery.base_copies`). In eval mode, when nothing needs gradients through z or λ (generation), θ
    is kept (`surgery.substitute.SubstituteCache`, shared by the adapter's modules: a tied tensor is
    read by several) and reused until z, λ or θ₀ change, so generating does not recompute every
    projection at every step; train mode drops the cache.
    """

    def __init__(self, subspace: IntrinsicSubspace, projections: nn.ModuleList, entries: list[tuple[str, int]],
                 scope: AdapterScope, cache: SubstituteCache):
        self.subspace, self.projections, self.scope, self.cache = subspace, projections, scope, cache
        self.index = dict(entries)      # attribute → the tensor's index (its λ and its projection)
        self.attributes = tuple(self.index)

    def cacheable(self) -> bool:
        subspace = self.subspace
        needs_grad = torch.is_grad_enabled() and (subspace.z.requires_grad or subspace.scales.requires_grad)
        return not subspace.training and not needs_grad

    def value(self, module: nn.Module, attribute: str, current: torch.Tensor, args: tuple[Any, ...]) -> torch.Tensor | None:
        if not self.scope.is_active():
            return None
        index = self.index[attribute]
        projection = self.projections[index]
        compute = lambda: self.subspace.weight(index, current, projection)  # noqa: E731
        if not self.cacheable():
            self.cache.clear()
            rows = lookup_rows(module, attribute, args)
            if rows is not None and supports_rows(projection, current):  # an embedding: only its batch's rows
                return self.subspace.weight_rows(index, current, projection, rows)
            return compute()
        return self.cache.value(index, (self.subspace.z, self.subspace.scales, current), compute)

    def around_call(self, module: nn.Module, substituted: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> Any:
        """While training, the θ this call's consumers save for their backward is recomputed there instead
        of kept (`methods.said_recompute`); a cached θ (eval, no gradient) is kept as it is."""
        if self.cacheable() or not torch.is_grad_enabled():
            return None
        return recompute_in_backward(self.subspace, self.projections,
                                     [(value, self.index[a], current) for a, (value, current) in substituted.items()])


def frozen_output_layer(model: nn.Module) -> nn.Module | None:
    """The module the paper keeps frozen: the output layer (``get_output_embeddings()``), if any."""
    return model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None


def parameter_owners(model: nn.Module) -> dict[int, list[nn.Module]]:
    """id(parameter) → every module that holds it in its ``_parameters`` (several for tied weights)."""
    owners: dict[int, list[nn.Module]] = {}
    for module in model.modules():
        for _, parameter in module.named_parameters(recurse=False):
            if parameter is not None:
                owners.setdefault(id(parameter), []).append(module)
    return owners


@dataclass
class IntrinsicSAIDOptions:
    """Options of the `intrinsic_said` method (defaults: the paper's runs; see the module docstring)."""

    # d': z (d' − m numbers) plus one λ per weight tensor (m); 20K in Table 1; at most the model's parameter count
    dimension: Annotated[int, Range(minimum=2, valid="an integer ≥ 2"), SIZE] = 20000
    seed: Annotated[int, Range(minimum=0, valid=f"an integer in [0, {INT64_MAX}]")] = 0  # seeds every tensor's Fastfood projection
    # norm_preserving: ‖Pⱼz‖ ≈ ‖z‖ per tensor, the authors' intrinsic.py divisor; unit_blocks: E[MᵀM] = I per block
    projection_scale: Literal["norm_preserving", "unit_blocks"] = "norm_preserving"
    # frozen: paper §5 (the output layer is frozen for all methods); in_subspace: reparametrised like the rest
    output_layer: Literal["frozen", "in_subspace"] = "frozen"
    # where each Fastfood's B, Π, G come from (methods.fastfood): 1 = one generator per tensor, held as
    # buffers (every checkpoint written before this option existed); 2 = one generator per block,
    # regenerated at each use and never held; 3 = one generator per L blocks, held, a Walsh sign pattern per
    # block (methods.fastfood_walsh). A recipe without the key means 1, so old checkpoints keep their numbers.
    fastfood_version: Literal[1, 2, 3] = 1


@register_method
class IntrinsicSAID(ModelMethod):
    """θ = θ₀ + λⱼ · Fastfoodⱼ(z) for every parameter tensor; only z and λ train (d' numbers)."""

    name = "intrinsic-said"
    Options = IntrinsicSAIDOptions
    options: IntrinsicSAIDOptions

    def validate(self, dims: ModelDims, family: ModelFamily) -> None:
        # The range of `dimension` (≥ 2) is checked by parse_options; the bounds that depend on the
        # model's tensors are checked in transform_model, which the plan's dry run executes on a
        # meta replica — still before the real model is touched.
        pass

    def validate_base(self, model: nn.Module, family: ModelFamily) -> None:
        quantized = describe_quantization(model)
        if quantized is not None:
            covered = quantized.total_tensors - len(quantized.integer_tensors)
            raise RecipeError("method", self.name, valid="a float base (load it without quantization_config)", reason=(
                f"reparametrises every weight tensor, but it could cover only {covered} of the {quantized.total_tensors} "
                f"here: this is {quantized}, and integer tensors cannot take θ₀ + λ·P·z"))

    def transform_model(self, model: nn.Module, family: ModelFamily, dims: ModelDims, scope: AdapterScope) -> None:
        d = self.options.dimension
        frozen_head = frozen_output_layer(model) if self.options.output_layer == "frozen" else None
        owners = parameter_owners(model)
        # named_parameters() lists a shared tensor once: tied weights get one index, one λ. A tensor
        # only the frozen output layer holds (an untied head) is left out, as is one tied only to a module
        # containing it (BERT's and RoBERTa's MLM heads hold the output layer's bias once more); one tied
        # to the embedding stays for the embedding.
        # Tensors other adapters added are theirs, not the base's: they are not reparametrised.
        head_and_holders = {id(m) for m in model.modules() if any(sub is frozen_head for sub in m.modules())}
        tensors = [(name, p) for name, p in model.named_parameters()
                   if not is_added(name) and p.is_floating_point()
                   and not (frozen_head is not None and all(id(m) in head_and_holders for m in owners[id(p)]))]
        m = len(tensors)
        if d < m + 1:
            raise RecipeError("options.dimension", d, valid=f"an integer ≥ {m + 1}",
                              reason=f"is less than the number of weight tensors ({m}) + 1: Intrinsic-SAID spends "
                                     f"one λ on each of the {m} tensors and needs at least one coordinate of z")
        total = sum(p.numel() for _, p in tensors)
        if d > total:
            raise RecipeError("options.dimension", d, valid=f"an integer in [{m + 1}, {total:,}]",
                              reason=f"is more than the {total:,} parameters of the model: a subspace has at most "
                                     "as many dimensions as the space it lies in")
        self.num_tensors = m
        reference = tensors[0][1]
        device = reference.device
        subspace = IntrinsicSubspace([name for name, _ in tensors], d, device, reference.dtype)
        scope.container.add_module("intrinsic", subspace)
        norm_preserving = self.options.projection_scale == "norm_preserving"
        projections = nn.ModuleList(
            Fastfood(d - m, p.numel(), seed=tensor_seed(self.options.seed, index), device=device,
                     norm_preserving=norm_preserving, version=self.options.fastfood_version)
            for index, (_, p) in enumerate(tensors)
        )
        model.add_module(scope.model_attribute(PROJECTIONS), projections)

        index_of = {id(p): index for index, (_, p) in enumerate(tensors)}
        cache = SubstituteCache()
        for _, module in model.named_modules():
            if module is frozen_head:
                continue  # reads θ₀: the paper keeps the output layer frozen
            entries = [(name, index_of[id(p)]) for name, p in module.named_parameters(recurse=False)
                       if p is not None and id(p) in index_of]
            if entries:
                for handle in substitute(module, IntrinsicWeights(subspace, projections, entries, scope, cache)):
                    scope.keep(handle)

    def trainable_groups(self, model: nn.Module, family: ModelFamily, scope: AdapterScope) -> dict[str, list[str]]:
        return {"intrinsic subspace": [scope.path("intrinsic.z"), scope.path("intrinsic.scales")]}

    def mixed_batch_refusal(self) -> str | None:
        return (f"method {self.name!r} moves every weight of the model (θ₀ + λ·P·z): examples with and without it "
                "share no weight, so they cannot share a batch (run its examples as a batch of their own)")

    def fold_refusal(self) -> str | None:
        return None

    def fold(self, model: nn.Module, family: ModelFamily, scope: AdapterScope) -> Any:
        """θ₀ + λ·P·z into every reparametrised tensor, computed by the same function the hooks use
        (so the folded model computes bit for bit what the unfolded one does). With the output layer
        frozen and tied to the embedding (T5 v1.0), the output layer keeps θ₀ as its own tensor: the
        folded model is untied, as a T5 v1.1 checkpoint is."""
        from .said_fold import fold_subspace

        return fold_subspace(model, scope.container.intrinsic, getattr(model, scope.model_attribute(PROJECTIONS)),
                             frozen_output_layer(model) if self.options.output_layer == "frozen" else None)

    def closed_form(self, plan: Any) -> list[tuple[str, str, int]]:
        d, m = self.options.dimension, getattr(self, "num_tensors", None)
        if m is None:
            return [("intrinsic subspace", "d'", d)]
        return [("intrinsic subspace", f"d' = {d - m:,} (z) + {m} (λ)", d)]
