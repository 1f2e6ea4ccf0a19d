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
Cost: O(N log L) time (see `fwht`) and 3 numbers per output entry (int8 sign, int32 index, float scale);
the N×n matrix never exists.

>>> import torch
>>> x = torch.tensor([1.0, 2.0, 3.0, 4.0])
>>> fwht(x, normalized=False)            # x @ H₄ (Sylvester order)
tensor([10., -2., -4.,  0.])
>>> torch.allclose(fwht(fwht(x)), x)     # the normalised transform is its own inverse
True
>>> projection = Fastfood(in_features=3, out_features=10, seed=0)
>>> projection(torch.zeros(3)).abs().sum().item()   # linear: zero in, zero out
0.0
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn


def is_power_of_two(value: int) -> bool:
    return value >= 1 and value & (value - 1) == 0


def next_power_of_two(value: int) -> int:
    """The smallest power of two ≥ value (value ≥ 1)."""
    return 1 << max(0, (value - 1).bit_length())


# Bits of the index transformed per pass: one pass multiplies by a 32×32 Hadamard factor, so a
# length-32768 transform takes 3 passes (3 small GEMMs) instead of 15 radix-2 butterfly passes —
# measured 4–9× faster on CPU, forward plus backward. Work is O(L · 32 · ⌈log₃₂ L⌉) = O(L log L).
RADIX_BITS = 5


@functools.lru_cache(maxsize=None)
def _hadamard_factor(size: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The unnormalised Sylvester Hadamard matrix of a power-of-two `size` (a pass's small factor)."""
    h = torch.ones(1, 1, dtype=dtype, device=device)
    while h.shape[0] < size:
        h = torch.cat([torch.cat([h, h], dim=1), torch.cat([h, -h], dim=1)], dim=0)
    return h


def fwht(x: torch.Tensor, normalized: bool = True) -> torch.Tensor:
    """Walsh–Hadamard transform of the last dimension in O(L log L): returns x @ H.

    H is the Sylvester-ordered Hadamard matrix (H₁ = [1], H₂ₙ = [[Hₙ, Hₙ], [Hₙ, −Hₙ]], symmetric),
    divided by √L when `normalized` (then H is orthonormal and the transform is self-inverse).
    The last dimension must be a power of two; leading dimensions are a batch. Differentiable.

    Why it is fast: H_L = H₂ ⊗ … ⊗ H₂ acts on each bit of the index independently, so the bits can
    be transformed in groups; a pass over `RADIX_BITS` bits is one batched product with a small
    Hadamard factor (the radix-2 butterfly is the case of one bit per pass).

    >>> fwht(torch.eye(2), normalized=False)
    tensor([[ 1.,  1.],
            [ 1., -1.]])
    """
    length = x.shape[-1]
    if not is_power_of_two(length):
        raise ValueError(f"fwht needs a power-of-two length, got {length}")
    bits = length.bit_length() - 1
    y = x.reshape(-1, length)
    done = 0  # index bits 0 … done−1 are transformed
    while done < bits:
        size = 1 << min(RADIX_BITS, bits - done)
        factor = _hadamard_factor(size, y.dtype, y.device)
        inner = 1 << done
        if inner == 1:  # the lowest bits are the last axis: one plain GEMM
            y = y.reshape(-1, size) @ factor
        else:  # (…, size, inner): the group's bits are the middle axis
            y = torch.matmul(factor, y.reshape(-1, size, inner))
        done += size.bit_length() - 1
    y = y.reshape(x.shape)
    return y * (1.0 / math.sqrt(length)) if normalized else y


class Fastfood(nn.Module):
    """A fixed random linear map R^in_features → R^out_features made of stacked Fastfood blocks.

    The randomness comes from `seed` alone and is drawn on the CPU, so the same seed gives the same
    projection on every device (a checkpoint of z is meaningful anywhere). The random diagonals and
    permutations are non-persistent buffers: they follow `.to(device)` but are not written to a
    state dict — they are regenerated from the seed instead. On the meta device nothing is drawn.

    Args:
        in_features: n, the length of the input vector (zero-padded to L = next power of two).
        out_features: N, the number of outputs (⌈N/L⌉ blocks are computed, the first N kept).
        seed: the seed of this projection's B, Π and G.
        norm_preserving: scale the output by ``output_scale`` = L·√(B/(N·ΣG²)), so ‖Pz‖ ≈ ‖z‖
            (see the module docstring); False keeps each block's E[MᵀM] = I.

    >>> projection = Fastfood(in_features=5, out_features=20, seed=1)
    >>> projection.padded_size, projection.num_blocks, projection.output_scale
    (8, 3, 1.0)
    >>> projection(torch.ones(5)).shape
    torch.Size([20])
    >>> big = Fastfood(in_features=100, out_features=100_000, seed=0, norm_preserving=True)
    >>> z = torch.randn(100)
    >>> round((big(z).norm() / z.norm()).item(), 1)
    1.0
    """

    signs: torch.Tensor        # (blocks, L) int8, ±1 — B
    permutation: torch.Tensor  # (blocks, L) int32 — π, (Π v)ᵢ = v[π(i)]
    gaussian: torch.Tensor     # (blocks, L) float — G

    def __init__(self, in_features: int, out_features: int, seed: int, device: torch.device | str | None = None,
                 norm_preserving: bool = False):
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Fastfood needs positive sizes, got {in_features} → {out_features}")
        self.in_features, self.out_features, self.seed = in_features, out_features, seed
        self.norm_preserving = norm_preserving
        self.padded_size = next_power_of_two(in_features)
        self.num_blocks = math.ceil(out_features / self.padded_size)
        shape = (self.num_blocks, self.padded_size)
        device = torch.device(device) if device is not None else torch.device("cpu")
        if device.type == "meta":
            signs = torch.empty(shape, dtype=torch.int8, device=device)
            permutation = torch.empty(shape, dtype=torch.int32, device=device)
            gaussian = torch.empty(shape, dtype=torch.float32, device=device)
        else:
            generator = torch.Generator().manual_seed(seed)
            signs = (torch.randint(0, 2, shape, generator=generator, dtype=torch.int8) * 2 - 1)
            permutation = torch.stack([torch.randperm(self.padded_size, generator=generator) for _ in range(self.num_blocks)])
            permutation = permutation.to(torch.int32)
            gaussian = torch.randn(shape, generator=generator)
            signs, permutation, gaussian = signs.to(device), permutation.to(device), gaussian.to(device)
        self.register_buffer("signs", signs, persistent=False)
        self.register_buffer("permutation", permutation, persistent=False)
        self.register_buffer("gaussian", gaussian, persistent=False)
        self.output_scale = self._norm_preserving_scale(gaussian) if norm_preserving else 1.0

    def _norm_preserving_scale(self, gaussian: torch.Tensor) -> float:
        """c = L·√(B / (N·ΣG²)); on the meta device (nothing drawn) E[ΣG²] = B·L stands in."""
        blocks, length, n = self.num_blocks, self.padded_size, self.out_features
        energy = float(blocks * length) if gaussian.device.type == "meta" else float(gaussian.double().pow(2).sum())
        return length * math.sqrt(blocks / (n * energy))

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (n,) → (N,), computed in float32
        padded = F.pad(z.float(), (0, self.padded_size - self.in_features))    # (L,)
        v = self.signs * padded                                                 # B:  (blocks, L)
        v = fwht(v)                                                             # H
        v = v.gather(1, self.permutation.long())                                # Π
        v = v * self.gaussian.float()                                           # G
        v = fwht(v)                                                             # H
        v = v.reshape(-1)[: self.out_features]
        return v * self.output_scale if self.norm_preserving else v

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"padded_size={self.padded_size}, blocks={self.num_blocks}, seed={self.seed}"
                + (f", output_scale={self.output_scale:.4g}" if self.norm_preserving else ""))
