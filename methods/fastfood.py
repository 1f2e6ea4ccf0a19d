"""The fast Walsh–Hadamard transform and the Fastfood random projection (Le, Sarlós & Smola, 2013).

Intrinsic-SAID maps a small vector z ∈ Rⁿ to an update of a weight tensor with N ≫ n entries
through a random projection that is never stored as a matrix. One Fastfood *block* of size L
(a power of two ≥ n) is the L×L linear map

    M = H · G · Π · H · B          applied to z zero-padded to length L

* B — diagonal of random ±1 signs,
* H — the Walsh–Hadamard matrix in Sylvester order, scaled by 1/√L so that H·H = I,
* Π — a random permutation, (Π v)ᵢ = v[π(i)],
* G — diagonal of independent N(0, 1) entries.

With the orthonormal H, E[MᵀM] = I: a block keeps ‖z‖ in expectation. When N > L, ⌈N/L⌉
independent blocks (each its own B, Π, G) are concatenated and the first N entries kept — the
"stacking" of the intrinsic-dimension papers. So the plain transform has E‖Pz‖² = (N/L)·‖z‖²:
a tensor with N entries moves √(N/L) times as far as z (27× for T5-base's embedding with
d' = 20,000, 0.15× for a layer norm).

``norm_preserving=True`` rescales the output by c = L·√(B / (N·ΣG²)) (B blocks, ΣG² over all their
Gaussian entries), so that ‖Pz‖ ≈ ‖z‖ whatever N: each kept row carries 1/L of its block's energy
ΣG_b²·‖z‖²/L (exactly, averaged over z's direction), so E‖Pz‖² ≈ (N/(B·L))·ΣG²·‖z‖²/L, which c² turns
into ‖z‖². For one block (N ≤ L) c = √(L/N)·√(L/ΣG²), exactly the divisor of the authors'
``fastfood_torched`` (rabeehk/compacter, seq2seq/projections/intrinsic.py: the unnormalised result
divided by √(L·ΣG²)·√(N/L)), which Intrinsic-SAID's learning rate 3e-2 was tuned with.
Where B, Π and G come from (``version``):

* 1 — one ``torch.Generator`` seeded per tensor draws all signs, then one permutation per block,
  then all Gaussians, held as buffers (3 numbers per output entry: int8, int32, float32). The
  convention of every checkpoint written before versions existed; kept so that they load and
  compute what they computed.
* 2 — block b of the projection seeded `s` draws its own G (``randn(L)``), B (bit j of the w-th
  of ⌈L/32⌉ ``randint(0, 2³²)`` draws is entry 32w + j: 1 → −1, 0 → +1) and π (``randperm(L)``), in
  that order, from a ``torch.Generator`` seeded with ``block_seed(s, b)``; regenerated each time
  the block is used and freed after: nothing is held but the seed and c.
* 3 — G, Π and B drawn once per round of L blocks (one round for any tensor under L² entries) and
  held (9 bytes × L per round); block t of a round is H·G·Π·H·(B ⊙ χ_{k_t}) with its own Walsh
  sign pattern χ_{k_t}, which turns its first transform into a gather (`methods.fastfood_walsh`):
  one transform per block each way instead of two, and no random numbers drawn per use.

Cost: O(N log L) time (see `fwht`); the N×n matrix never exists. `update` computes θ₀ + λ·P·z in
chunks of blocks (`CHUNK_ELEMENTS`), so the transients are a few MiB whatever N is, and its
backward computes Pᵀ·(∂L/∂θ) chunk by chunk — the gradients of z and λ both follow from that one
n-vector, so no Δ is kept for the backward.

>>> import torch
>>> x = torch.tensor([1.0, 2.0, 3.0, 4.0])
>>> fwht(x, normalized=False)            # x @ H₄ (Sylvester order)
tensor([10., -2., -4.,  0.])
>>> torch.allclose(fwht(fwht(x)), x)     # the normalised transform is its own inverse
True
>>> projection = Fastfood(in_features=3, out_features=10, seed=0)
>>> projection(torch.zeros(3)).abs().sum().item()   # linear: zero in, zero out
0.0
>>> Fastfood(in_features=3, out_features=10, seed=0, version=2)(torch.ones(3)).shape
torch.Size([10])
>>> Fastfood(in_features=3, out_features=10, seed=0, version=3)(torch.ones(3)).shape
torch.Size([10])
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import fastfood_walsh as walsh
from .walsh_hadamard import block_seed, fwht, next_power_of_two

VERSIONS = (1, 2, 3)

# Elements per chunk of blocks in `update` and its backward: 2¹⁸ float32 = 1 MiB per working
# array, so one chunk's passes stay in cache and the transients stay small whatever N is.
CHUNK_ELEMENTS = 1 << 18


class Fastfood(nn.Module):
    """A fixed random linear map R^in_features → R^out_features made of stacked Fastfood blocks.

    The randomness comes from `seed` alone and is drawn on the CPU, so the same seed gives the same
    projection on every device (a checkpoint of z is meaningful anywhere). Version 1 holds its
    draws as non-persistent buffers (they follow `.to(device)`, are not written to a state dict);
    version 2 holds none and regenerates each block's draws when it is used; version 3 holds one
    round's draws per L blocks, as buffers too (module docstring).
    On the meta device nothing is drawn.

    Args:
        in_features: n, the length of the input vector (zero-padded to L = next power of two).
        out_features: N, the number of outputs (⌈N/L⌉ blocks are computed, the first N kept).
        seed: the seed of this projection's B, Π and G.
        norm_preserving: scale the output by ``output_scale`` = L·√(B/(N·ΣG²)), so ‖Pz‖ ≈ ‖z‖
            (see the module docstring); False keeps each block's E[MᵀM] = I.
        version: where B, Π and G come from: 1 (per tensor, stored), 2 (per block, regenerated) or
            3 (per round of L blocks, stored, a Walsh sign pattern per block).

    >>> projection = Fastfood(in_features=5, out_features=20, seed=1)
    >>> projection.padded_size, projection.num_blocks, projection.output_scale
    (8, 3, 1.0)
    >>> projection(torch.ones(5)).shape
    torch.Size([20])
    >>> big = Fastfood(in_features=100, out_features=100_000, seed=0, norm_preserving=True, version=2)
    >>> z = torch.randn(100)
    >>> round((big(z).norm() / z.norm()).item(), 1)
    1.0
    """

    def __init__(self, in_features: int, out_features: int, seed: int, device: torch.device | str | None = None,
                 norm_preserving: bool = False, version: int = 1):
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Fastfood needs positive sizes, got {in_features} → {out_features}")
        if version not in VERSIONS:
            raise ValueError(f"Fastfood version {version!r} is not one of {VERSIONS}")
        self.in_features, self.out_features, self.seed, self.version = in_features, out_features, seed, version
        self.norm_preserving = norm_preserving
        self.padded_size = next_power_of_two(in_features)
        self.num_blocks = math.ceil(out_features / self.padded_size)
        device = torch.device(device) if device is not None else torch.device("cpu")
        self.on_meta = device.type == "meta"
        if version == 1:
            self._draw_stored(device)
        elif version == 3:
            self._draw_rounds(device)
        self.output_scale = self._norm_preserving_scale() if norm_preserving else 1.0

    def _draw_stored(self, device: torch.device) -> None:
        """Version 1: all blocks' draws from one generator seeded per tensor, held as buffers."""
        shape = (self.num_blocks, self.padded_size)
        if device.type == "meta":
            signs = torch.empty(shape, dtype=torch.int8, device=device)
            permutation = torch.empty(shape, dtype=torch.int32, device=device)
            gaussian = torch.empty(shape, dtype=torch.float32, device=device)
        else:
            generator = torch.Generator().manual_seed(self.seed)
            signs = (torch.randint(0, 2, shape, generator=generator, dtype=torch.int8) * 2 - 1)
            permutation = torch.stack([torch.randperm(self.padded_size, generator=generator) for _ in range(self.num_blocks)])
            permutation = permutation.to(torch.int32)
            gaussian = torch.randn(shape, generator=generator)
            signs, permutation, gaussian = signs.to(device), permutation.to(device), gaussian.to(device)
        self.register_buffer("signs", signs, persistent=False)             # (blocks, L) int8, ±1 — B
        self.register_buffer("permutation", permutation, persistent=False)  # (blocks, L) int32 — π, (Π v)ᵢ = v[π(i)]
        self.register_buffer("gaussian", gaussian, persistent=False)        # (blocks, L) float — G

    def _draw_rounds(self, device: torch.device) -> None:
        """Version 3: G, B, π and the Walsh keys of each round of L blocks (`methods.fastfood_walsh`), held."""
        count, length = -(-self.num_blocks // self.padded_size), self.padded_size
        if device.type == "meta":
            rounds = [walsh.RoundDraws(torch.empty(length, device=device), torch.empty(length, dtype=torch.int8, device=device),
                                       torch.empty(length, dtype=torch.int32, device=device), 1, 0)] * count
        else:
            rounds = [walsh.draw_round(self.seed, index, length) for index in range(count)]
        self.walsh_keys = [(r.multiplier, r.offset) for r in rounds]
        self.register_buffer("gaussian", torch.stack([r.gaussian for r in rounds]).to(device), persistent=False)
        self.register_buffer("signs", torch.stack([r.signs for r in rounds]).to(device), persistent=False)
        self.register_buffer("permutation", torch.stack([r.permutation for r in rounds]).to(device), persistent=False)

    def round_draws(self, index: int) -> walsh.RoundDraws:
        """Version 3: the draws of round `index` (blocks index·L … index·L + L − 1)."""
        multiplier, offset = self.walsh_keys[index]
        return walsh.RoundDraws(self.gaussian[index], self.signs[index], self.permutation[index], multiplier, offset)

    def draws(self, first: int, last: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Versions 1 and 2: (signs, permutation, gaussian) of blocks first … last−1: (k, L) float32, int64, float32."""
        if self.version == 3:
            raise ValueError("version 3 has no per-block draws: see round_draws")
        if self.version == 1:
            return (self.signs[first:last].float(), self.permutation[first:last].long(),
                    self.gaussian[first:last].float())
        length, generator = self.padded_size, torch.Generator()
        words, permutation, gaussian = [], [], []
        for block in range(first, last):
            generator.manual_seed(block_seed(self.seed, block))
            gaussian.append(torch.randn(length, generator=generator))
            words.append(torch.randint(0, 1 << 32, (-(-length // 32),), generator=generator))  # 32 sign bits a draw
            permutation.append(torch.randperm(length, generator=generator))
        bits = (torch.stack(words).unsqueeze(-1) >> torch.arange(32)) & 1  # (k, ⌈L/32⌉, 32): bit j of word w is entry 32w + j
        signs = 1.0 - 2.0 * bits.flatten(1)[:, :length].float()
        return signs, torch.stack(permutation), torch.stack(gaussian)

    def chunks(self) -> list[tuple[int, int]]:
        """Consecutive block ranges of about `CHUNK_ELEMENTS` entries (in version 3, never across two rounds)."""
        step = max(1, CHUNK_ELEMENTS // self.padded_size)
        if self.version == 3:  # both powers of two: chunks of ≤ L blocks tile the rounds
            step = min(1 << (step.bit_length() - 1), self.padded_size)
        return [(first, min(first + step, self.num_blocks)) for first in range(0, self.num_blocks, step)]

    def _norm_preserving_scale(self) -> float:
        """c = L·√(B / (N·ΣG²)); on the meta device (nothing drawn) E[ΣG²] = B·L stands in."""
        blocks, length, n = self.num_blocks, self.padded_size, self.out_features
        if self.on_meta:
            energy = float(blocks * length)
        elif self.version == 3:  # round r's G serves min(L, blocks − rL) blocks
            energy = sum(min(length, blocks - r * length) * float(g.double().pow(2).sum()) for r, g in enumerate(self.gaussian))
        else:
            energy = sum(float(self.draws(first, last)[2].double().pow(2).sum()) for first, last in self.chunks())
        return length * math.sqrt(blocks / (n * energy))

    def project_blocks(self, z: torch.Tensor, first: int, last: int) -> torch.Tensor:
        """Versions 1 and 2: c·(M_b z) for blocks first … last−1, (k, L) float32 (before dropping entries past N)."""
        signs, permutation, gaussian = (d.to(z.device) for d in self.draws(first, last))
        padded = F.pad(z.float(), (0, self.padded_size - z.shape[-1]))          # (L,)
        v = fwht(signs * padded)                                                # H·B:  (k, L)
        v = fwht(v.gather(1, permutation) * gaussian)                           # H·G·Π
        return v * self.output_scale if self.norm_preserving else v

    def transpose_blocks(self, grad: torch.Tensor, first: int, last: int) -> torch.Tensor:
        """Versions 1 and 2: Σ_b c·M_bᵀ g_b over blocks first … last−1 for g (k, L) float32: (L,)."""
        signs, permutation, gaussian = (d.to(grad.device) for d in self.draws(first, last))
        u = fwht(grad * self.output_scale if self.norm_preserving else grad) * gaussian   # G·H (H, G symmetric)
        unpermuted = torch.empty_like(u).scatter_(1, permutation, u)                      # Πᵀ
        return (fwht(unpermuted) * signs).sum(0)                                          # B·H, summed over blocks

    def begin_projection(self, z: torch.Tensor) -> Any:
        """What every chunk of one projection of z shares: z zero-padded to L (float32); in version 3, the
        rounds' draws and u_r = H·(B_r ⊙ z) per round, computed when a chunk of the round first needs it."""
        padded = F.pad(z.float(), (0, self.padded_size - self.in_features))
        return padded if self.version != 3 else walsh.ProjectionRounds(self.round_draws, padded)

    def chunk_factor(self) -> float:
        """Version 3: what `project_chunk(…, scaled=False)` leaves to multiply by, c/√L."""
        return (self.output_scale if self.norm_preserving else 1.0) / math.sqrt(self.padded_size)

    def _in_round(self, first: int) -> tuple[int, int]:
        """Version 3: (round, position of block `first` in it)."""
        return divmod(first, self.padded_size)

    def project_chunk(self, state: Any, first: int, last: int, scaled: bool = True) -> torch.Tensor:
        """c·(M_b z) for blocks first … last−1 of a chunk, (k, L) float32 (state: `begin_projection`);
        when not `scaled` (version 3 only), times `1 / chunk_factor()`."""
        if self.version != 3:
            return self.project_blocks(state, first, last)
        round_index, start = self._in_round(first)
        v = walsh.project(state.draws(round_index), state.input(round_index), start, start + last - first)  # √L·M_t z
        return v * self.chunk_factor() if scaled else v

    def project_chunk_add(self, state: Any, first: int, last: int, factor: torch.Tensor,
                          base: torch.Tensor, out: torch.Tensor) -> None:
        """Version 3, whole blocks: out = base + factor·(M_b z)/`chunk_factor()` for blocks first … last−1
        (base, out: flat float32 of (last − first)·L entries), the scaling and the sum in the transform's last pass."""
        round_index, start = self._in_round(first)
        walsh.project_add(state.draws(round_index), state.input(round_index), start, start + last - first, factor, base, out)

    def begin_transpose(self, device: torch.device) -> Any:
        """The accumulator of Σ_b c·M_bᵀ g_b: (L,) in versions 1 and 2; in version 3 (rounds, L) and the
        rounds' draws (made once for all chunks)."""
        if self.version != 3:
            return torch.zeros(self.padded_size, dtype=torch.float32, device=device)
        return (torch.zeros(self.gaussian.shape[0], self.padded_size, dtype=torch.float32, device=device),
                walsh.ProjectionRounds(self.round_draws))

    def transpose_chunk(self, accumulator: Any, grad: torch.Tensor, first: int, last: int) -> None:
        """accumulator += the chunk's share of Σ_b c·M_bᵀ g_b, for grad rows g (k, L) float32."""
        if self.version != 3:
            accumulator += self.transpose_blocks(grad, first, last)
            return
        sums, rounds = accumulator
        round_index, start = self._in_round(first)
        walsh.accumulate_transpose(rounds.draws(round_index), sums[round_index], grad, start, start + last - first)

    def finish_transpose(self, accumulator: Any) -> torch.Tensor:
        """Σ_b c·M_bᵀ g_b, (L,) float32, from `begin_transpose`'s accumulator."""
        if self.version != 3:
            return accumulator
        sums, rounds = accumulator
        h = sum(walsh.finish_transpose(rounds.draws(r), row) for r, row in enumerate(sums))
        return h * self.chunk_factor()  # c/√L applied once, to the sum (linear)

    def forward(self, z: torch.Tensor, scale: torch.Tensor | None = None, base: torch.Tensor | None = None) -> torch.Tensor:
        """P·z, (n,) → (N,) in float32; or, given a scale λ and a base θ₀, θ₀ + λ·P·z shaped and typed like θ₀."""
        return update(z, scale, base, self)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"padded_size={self.padded_size}, blocks={self.num_blocks}, seed={self.seed}, version={self.version}"
                + (f", output_scale={self.output_scale:.4g}" if self.norm_preserving else ""))


class FastfoodUpdate(torch.autograd.Function):
    """θ = base + (scale·P·z) (in base's dtype), or P·z (float32) without a base and scale.

    Forward and backward walk the blocks in chunks: Δ is never whole in memory unless it is the
    result, and nothing but z and the scale is saved for the backward, which computes h = Pᵀ·g once
    and returns ∂L/∂z = scale·h and ∂L/∂scale = ⟨h, z⟩ (since ⟨g, P z⟩ = ⟨Pᵀ g, z⟩).
    """

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, scale: torch.Tensor | None, base: torch.Tensor | None,
                projection: Fastfood) -> torch.Tensor:
        ctx.projection, ctx.has_scale = projection, scale is not None
        if scale is not None:
            ctx.save_for_backward(z, scale)
        else:
            ctx.save_for_backward(z)
        length, total = projection.padded_size, projection.out_features
        if base is None:
            out = torch.empty(total, dtype=torch.float32, device=z.device)
        else:
            out = torch.empty(base.shape, dtype=base.dtype, device=base.device)
        flat, base_flat = out.view(-1), None if base is None else base.reshape(-1)
        state = projection.begin_projection(z)
        # version 3 into a float32 base: λ·c in one multiply, θ₀ + that written straight into θ (two passes fewer)
        fused = projection.version == 3 and base is not None and base.dtype == torch.float32
        factor = scale.float() * projection.chunk_factor() if fused else None
        for first, last in projection.chunks():
            start, stop = first * length, min(last * length, total)
            if fused and stop - start == (last - first) * length:
                projection.project_chunk_add(state, first, last, factor, base_flat[start:stop], flat[start:stop])
                continue
            delta = projection.project_chunk(state, first, last, scaled=not fused).view(-1)[: stop - start]
            if fused:
                torch.add(base_flat[start:stop], delta.mul_(factor), out=flat[start:stop])
            elif base is None:
                flat[start:stop] = delta
            else:  # the same operations as θ₀ + (λ·Δ).to(dtype) on the whole tensor, slice by slice
                flat[start:stop] = base_flat[start:stop] + (scale * delta).to(base.dtype)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        projection = ctx.projection
        z, scale = ctx.saved_tensors if ctx.has_scale else (ctx.saved_tensors[0], None)
        length, total = projection.padded_size, projection.out_features
        flat = grad.reshape(-1)
        accumulator = projection.begin_transpose(grad.device)
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            for first, last in projection.chunks():
                start, stop = first * length, min(last * length, total)
                missing = (last - first) * length - (stop - start)
                chunk = flat[start:stop].float() if missing == 0 else F.pad(flat[start:stop].float(), (0, missing))
                projection.transpose_chunk(accumulator, chunk.view(last - first, length), first, last)
        h = projection.finish_transpose(accumulator)[: projection.in_features]
        grad_z, grad_scale = gradients_from_transpose(h, z, scale, ctx.needs_input_grad[0], ctx.needs_input_grad[1])
        return grad_z, grad_scale, grad if ctx.needs_input_grad[2] else None, None


def gradients_from_transpose(h: torch.Tensor | None, z: torch.Tensor, scale: torch.Tensor | None,
                             for_z: bool, for_scale: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """∂L/∂z = scale·h and ∂L/∂scale = ⟨h, z⟩ from h = Pᵀ·(∂L/∂θ) (as asked; scale None means 1)."""
    grad_z = (h * scale.float() if scale is not None else h).to(z.dtype) if for_z else None
    grad_scale = (h.double() @ z.double()).to(scale.dtype) if for_scale else None
    return grad_z, grad_scale


def update(z: torch.Tensor, scale: torch.Tensor | None, base: torch.Tensor | None, projection: Fastfood) -> torch.Tensor:
    """θ = base + scale·P·z shaped and typed like base (or P·z, float32, without a base), differentiable
    in z, scale and base (see `FastfoodUpdate`).

    >>> projection = Fastfood(in_features=4, out_features=6, seed=0, version=2)
    >>> z, base = torch.randn(4), torch.zeros(2, 3)
    >>> torch.allclose(update(z, torch.tensor(2.0), base, projection).flatten(), 2 * projection(z))
    True
    """
    return FastfoodUpdate.apply(z, scale, base, projection)
