"""Fastfood version 3: G, Π and B drawn once per *round* of L blocks, each block told apart by a Walsh sign pattern.

A Fastfood block is M = H·G·Π·H·D (`methods.fastfood`). Version 3 draws, for round r of a
projection seeded `s` (blocks rL … rL + L − 1; every tensor smaller than L² entries has one round),
from a ``torch.Generator`` seeded with ``block_seed(s, r)``, in this order:

* G_r — ``randn(L)``, the Gaussian diagonal,
* B_r — ⌈L/32⌉ ``randint(0, 2³²)`` words, bit j of word w is entry 32w + j (1 → −1, 0 → +1),
* π_r — ``randperm(L)``, (Π v)ᵢ = v[π(i)],
* (a, c) — two ``randint(0, 2³²)`` words; a ← (a | 1) mod L, c ← c mod L,

and block t of the round (t = 0 … L − 1) uses the sign diagonal D_t = B_r ⊙ χ_{k_t}, where
χ_k(i) = (−1)^popcount(i AND k) is the k-th Walsh function (row k of √L·H) and
k_t = ((a·t) mod L) XOR c — distinct for the L blocks of a round (a is odd), so no two blocks are
the same map. Within a round the blocks differ only in D_t; their Gram matrix Σ_t D_t·X·D_t averages
the off-diagonal of X = (H·G·Π·H)ᵀ(H·G·Π·H) out, as independent signs would.

Why this is cheap: H·(χ_k ⊙ x) is H·x with its index XOR-ed by k, so with u = H·(B_r ⊙ z), computed
once per round, (Π·H·D_t·z)ᵢ = u[π(i) XOR k_t] — one gather instead of a Hadamard transform and
fresh random numbers per block. The transpose likewise scatters each block's G·H·g into one
vector and transforms once per round. A block costs one fast Walsh–Hadamard transform each way.

What is held: G_r, π_r, B_r (float32, int32, int8: 9 bytes × L per round) and (a, c), drawn when
the projection is made — ~9·(N/L + L) bytes per tensor, against version 1's 9·N.

>>> import torch
>>> draws = draw_round(seed=0, round_index=0, length=8)
>>> sorted(draws.permutation.tolist()) == list(range(8)), draws.signs.abs().tolist() == [1] * 8
(True, True)
>>> walsh_indices(draws, 0, 8).sort().values.tolist()   # every block of a full round its own pattern
[0, 1, 2, 3, 4, 5, 6, 7]
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .walsh_hadamard import block_seed, fwht, fwht_scaled_add, fwht_unnormalized_into


@dataclass
class RoundDraws:
    """The random numbers of one round of a version-3 projection (see the module docstring)."""

    gaussian: torch.Tensor     # (L,) float32 — G
    signs: torch.Tensor        # (L,) int8, ±1 — B
    permutation: torch.Tensor  # (L,) int32 — π
    multiplier: int            # a (odd, or 0 when L = 1)
    offset: int                # c

    @functools.cached_property
    def long_permutation(self) -> torch.Tensor:
        """π as int64, made once per `RoundDraws` (one per round and projection call): the index of every
        block's gather and scatter is π XOR k_t, and torch indexes with int64 fastest."""
        return self.permutation.long()


def draw_round(seed: int, round_index: int, length: int) -> RoundDraws:
    """Round `round_index`'s draws of the version-3 projection seeded `seed` with padded size `length`."""
    generator = torch.Generator().manual_seed(block_seed(seed, round_index))
    gaussian = torch.randn(length, generator=generator)
    words = torch.randint(0, 1 << 32, (-(-length // 32),), generator=generator)
    bits = ((words.unsqueeze(-1) >> torch.arange(32)) & 1).flatten()[:length]  # bit j of word w: entry 32w + j
    permutation = torch.randperm(length, generator=generator).to(torch.int32)
    multiplier, offset = torch.randint(0, 1 << 32, (2,), generator=generator).tolist()
    mask = length - 1
    return RoundDraws(gaussian, (1 - 2 * bits).to(torch.int8), permutation, (multiplier | 1) & mask, offset & mask)


def walsh_indices(draws: RoundDraws, first: int, last: int) -> torch.Tensor:
    """k_t = ((a·t) mod L) XOR c for blocks t = first … last − 1 of the round, int32 (last − first,)."""
    return walsh_keys_at(draws, torch.arange(first, last, dtype=torch.int64)).to(torch.int32)


def walsh_keys_at(draws: RoundDraws, positions: torch.Tensor) -> torch.Tensor:
    """k_t for the blocks at `positions` (int64, any device) of the round: int64, on that device."""
    mask = draws.gaussian.numel() - 1
    return ((positions * draws.multiplier) & mask) ^ draws.offset


def gather_index(draws: RoundDraws, first: int, last: int, device: torch.device) -> torch.Tensor:
    """(last − first, L) int64: row t holds π(i) XOR k_t, the entry of u that lands at i."""
    return gather_index_at(draws, torch.arange(first, last, dtype=torch.int64, device=device))


def gather_index_at(draws: RoundDraws, positions: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """`gather_index` for the blocks at `positions` (int64) of the round, on their device (into `out`'s start)."""
    keys = walsh_keys_at(draws, positions)
    shape = (positions.numel(), draws.gaussian.numel())
    target = None if out is None else out[: shape[0] * shape[1]].view(shape)
    return torch.bitwise_xor(draws.long_permutation.to(positions.device).unsqueeze(0), keys.unsqueeze(1), out=target)


_WORKSPACES = threading.local()


def workspace(numel: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(int64, float32, float32) flat buffers of ≥ numel entries, kept per thread and device and reused by every
    chunk of every projection: on CPU a fresh multi-MiB tensor per chunk costs its page faults again
    (measured ~30 % of a projection's time). ~16 bytes per entry of the largest chunk (4 MiB at 2¹⁸)."""
    held = getattr(_WORKSPACES, "buffers", None)
    if held is None:
        held = _WORKSPACES.buffers = {}
    buffers = held.get(device)
    if buffers is None or buffers[1].numel() < numel:
        buffers = held[device] = (torch.empty(numel, dtype=torch.int64, device=device),
                                  torch.empty(numel, device=device), torch.empty(numel, device=device))
    return buffers


class ProjectionRounds:
    """What one call of a version-3 projection (or of its transpose) reuses across its chunks: each round's
    draws, made once (their int64 π too), and, given z, u_r = H·(B_r ⊙ z), computed when first needed."""

    def __init__(self, make_draws: Callable[[int], RoundDraws], padded_z: torch.Tensor | None = None):
        self.make_draws, self.padded_z = make_draws, padded_z
        self.made: dict[int, RoundDraws] = {}
        self.inputs: dict[int, torch.Tensor] = {}

    def draws(self, round_index: int) -> RoundDraws:
        if round_index not in self.made:
            self.made[round_index] = self.make_draws(round_index)
        return self.made[round_index]

    def input(self, round_index: int) -> torch.Tensor:
        if round_index not in self.inputs:
            assert self.padded_z is not None, "a transpose has no z"
            self.inputs[round_index] = signed_input_transform(self.draws(round_index), self.padded_z)
        return self.inputs[round_index]


def signed_input_transform(draws: RoundDraws, padded_z: torch.Tensor) -> torch.Tensor:
    """u = H·(B ⊙ z): shared by every block of the round, float32 (L,)."""
    return fwht(draws.signs.to(padded_z.device, torch.float32) * padded_z)


def mixed_input(draws: RoundDraws, u: torch.Tensor, first: int, last: int) -> torch.Tensor:
    """x_t = G ⊙ u[π(·) XOR k_t] for blocks first … last − 1 of the round, (k, L) float32: block t is H·x_t."""
    return mixed_input_at(draws, u, torch.arange(first, last, dtype=torch.int64, device=u.device))


def mixed_input_at(draws: RoundDraws, u: torch.Tensor, positions: torch.Tensor, out: torch.Tensor | None = None,
                   index_buffer: torch.Tensor | None = None) -> torch.Tensor:
    """`mixed_input` for the blocks at `positions` (int64, on u's device) of the round (into the starts of
    `out` and `index_buffer` when given)."""
    index = gather_index_at(draws, positions, index_buffer)
    target = None if out is None else out[: index.numel()]
    return torch.index_select(u, 0, index.view(-1), out=target).view(index.shape).mul_(draws.gaussian.to(u.device))


def project(draws: RoundDraws, u: torch.Tensor, first: int, last: int) -> torch.Tensor:
    """√L·M_t·z = √L·H·(G ⊙ u[π(·) XOR k_t]) for blocks first … last − 1 of the round: (k, L) float32.

    The transform is left unnormalised (√L times too large) so that the caller folds 1/√L into the
    one scalar it multiplies by anyway (λ·c), saving a pass over the block.
    """
    return fwht(mixed_input(draws, u, first, last), normalized=False)


def project_add(draws: RoundDraws, u: torch.Tensor, first: int, last: int, scale: torch.Tensor,
                base: torch.Tensor, out: torch.Tensor) -> None:
    """out = base + scale·√L·M_t·z for whole blocks first … last − 1 (base, out: (last − first)·L float32):
    the scaling and the addition ride on the transform's last pass (`fwht_scaled_add`); the temporaries
    live in the `workspace`."""
    with torch.no_grad():
        index, mixed, spare = workspace(out.numel(), u.device)
        positions = torch.arange(first, last, dtype=torch.int64, device=u.device)
        fwht_scaled_add(mixed_input_at(draws, u, positions, mixed, index), scale, base, out, spare)


def accumulate_transpose(draws: RoundDraws, accumulator: torch.Tensor, grad: torch.Tensor, first: int, last: int) -> None:
    """accumulator += √L·Σ_t q_t for grad rows g_t (k, L), where D_t·H·q_t = M_tᵀ g_t: q_t[π(i) XOR k_t] = (G ⊙ H g_t)ᵢ.

    `finish_transpose` turns the sum into √L·Σ_t M_tᵀ g_t with one transform (the transform per block
    is unnormalised, as in `project`). The temporaries live in the `workspace`; grad is not written.
    """
    with torch.no_grad():
        index, first_buffer, second_buffer = workspace(grad.numel(), grad.device)
        positions = torch.arange(first, last, dtype=torch.int64, device=grad.device)
        transformed = fwht_unnormalized_into(grad, (first_buffer, second_buffer))
        accumulate_transformed(draws, accumulator, transformed, positions, index)


def accumulate_transformed(draws: RoundDraws, accumulator: torch.Tensor, transformed: torch.Tensor,
                           positions: torch.Tensor, index_buffer: torch.Tensor | None = None) -> None:
    """`accumulate_transpose` given the rows' transforms √L·H·g_t (k, L) for the blocks at `positions` (int64);
    `transformed` is overwritten."""
    index = gather_index_at(draws, positions, index_buffer)
    accumulator.scatter_add_(0, index.view(-1), transformed.mul_(draws.gaussian.to(transformed.device)).view(-1))


def finish_transpose(draws: RoundDraws, accumulator: torch.Tensor) -> torch.Tensor:
    """B ⊙ H·q: Σ_t M_tᵀ g_t of the round (× √L from `accumulate_transpose`), (L,) float32 (H·(x[· XOR k]) = χ_k ⊙ H·x)."""
    return fwht(accumulator) * draws.signs.to(accumulator.device, torch.float32)
