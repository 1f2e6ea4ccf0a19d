"""θ₀ + λ·P·z at the rows a lookup reads: an embedding's update costs what its batch touches, not the vocabulary.

An embedding lookup reads only the rows of its input ids, and its gradient is zero everywhere else.
`update_rows` returns θ shaped like θ₀ whose rows `rows` are θ₀ + λ·P·z and whose other rows are θ₀,
and its backward takes the gradient from those rows only: for a lookup of `rows`, exactly what the
whole θ gives (the values it reads and the gradient it sends are the same).

Why it is cheaper (Fastfood version 3, `methods.fastfood_walsh`): a row of w entries is w/s aligned
segments of s entries (s the largest power of two dividing w, at most L). Block t's output is H_L·x_t
with H_L = H_{L/s} ⊗ H_s (Sylvester order), so segment j of it is H_s·(Σᵢ H_{L/s}[j, i]·x_t[i, :]) with
x_t viewed as (L/s, s): one row of H_{L/s} against x_t, then a transform of s entries, instead of the
whole block's transform. The transpose is the same map backwards: H_L·g for a g that is zero outside
the segments is H_{L/s}[segments]ᵀ·(H_s·g_segments). Only blocks holding a read row are touched; their
gather (x_t) still costs L each. T5-small's embedding (32128 × 512, 502 blocks of 2¹⁵) with a batch of
~1,000 distinct ids: one small product per block instead of three transform passes each way.

>>> import torch
>>> from methods.fastfood import Fastfood
>>> projection = Fastfood(in_features=10, out_features=64 * 8, seed=0, version=3)   # L = 16: 32 blocks
>>> z, scale, base = torch.randn(10), torch.tensor(1.5), torch.randn(64, 8)
>>> rows = torch.tensor([3, 40, 3])
>>> theta = update_rows(z, scale, base, projection, rows)
>>> full = base + scale * projection(z).view(64, 8)
>>> torch.allclose(theta[rows], full[rows], atol=1e-6), torch.equal(theta[5], base[5])
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from . import fastfood_walsh as walsh
from .walsh_hadamard import fwht

# Segments shorter than this would make H_{L/s} long (L/s products per segment): the whole θ is cheaper.
MIN_SEGMENT = 16


def segment_size(row_length: int, padded_size: int) -> int:
    """s: the largest power of two dividing the row length, at most L (a row is row_length/s aligned segments)."""
    return min(row_length & -row_length, padded_size)


def supports_rows(projection: Any, base: torch.Tensor) -> bool:
    """Whether `update_rows` applies: a version-3 projection of a 2-D θ₀ whose rows are segments of ≥ MIN_SEGMENT."""
    return (getattr(projection, "version", None) == 3 and base.dim() == 2 and base.shape[1] > 0
            and segment_size(base.shape[1], projection.padded_size) >= MIN_SEGMENT)


def hadamard_rows(indices: torch.Tensor, size: int) -> torch.Tensor:
    """Rows `indices` of the unnormalised Sylvester Hadamard matrix of `size`: (−1)^popcount(i AND j), float32.

    >>> hadamard_rows(torch.tensor([1, 3]), 4)
    tensor([[ 1., -1.,  1., -1.],
            [ 1., -1., -1.,  1.]])
    """
    both = indices.unsqueeze(1) & torch.arange(size, device=indices.device)
    parity = torch.zeros_like(both)
    for bit in range(max(0, size.bit_length() - 1)):
        parity ^= (both >> bit) & 1
    return 1.0 - 2.0 * parity.float()


@dataclass
class BlockGroup:
    """Blocks of one round whose segments are computed together: their positions in the round, the
    segments' range in the sorted segment list, and where each segment sits in the padded product."""

    round_index: int
    positions: torch.Tensor  # (k,) int64: the blocks' positions in the round
    start: int               # the group's segments are segments[start:stop]
    stop: int
    block: torch.Tensor      # (n,) int64: each segment's block, 0 … k − 1
    slot: torch.Tensor       # (n,) int64: its row in the block's padded (slots, L/s) Hadamard rows
    hadamard: torch.Tensor   # (k, slots, L/s) float32: H_{L/s} rows of the segments, zero rows as padding


def plan_groups(segments: torch.Tensor, segment: int, length: int, blocks_per_group: int) -> list[BlockGroup]:
    """Group the sorted, distinct `segments` (ids of s-entry segments of the flat θ) by block, at most
    `blocks_per_group` blocks a group, never across rounds."""
    per_block = length // segment
    block_of = segments // per_block
    blocks, inverse, counts = torch.unique_consecutive(block_of, return_inverse=True, return_counts=True)
    firsts = torch.cumsum(counts, 0) - counts  # index of each block's first segment
    groups, index = [], 0
    block_list = blocks.tolist()
    while index < len(block_list):
        round_index = block_list[index] // length
        end = index + 1
        while end < len(block_list) and end - index < blocks_per_group and block_list[end] // length == round_index:
            end += 1
        start, stop = int(firsts[index]), int(firsts[end - 1] + counts[end - 1])
        local = inverse[start:stop] - index
        slot = torch.arange(start, stop, device=segments.device) - firsts[inverse[start:stop]]
        hadamard = torch.zeros(end - index, int(counts[index:end].max()), per_block, device=segments.device)
        hadamard[local, slot] = hadamard_rows(segments[start:stop] % per_block, per_block)
        groups.append(BlockGroup(round_index, blocks[index:end] % length, start, stop, local, slot, hadamard))
        index = end
    return groups


class FastfoodRowsUpdate(torch.autograd.Function):
    """θ = base with rows `rows` moved to base + scale·P·z (see `update_rows`); the backward reads the
    gradient at those rows only, and keeps z, the scale and the segment plan (no θ, no Δ)."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, scale: torch.Tensor, base: torch.Tensor, projection: Any,
                rows: torch.Tensor) -> torch.Tensor:
        from .fastfood import CHUNK_ELEMENTS

        length, width = projection.padded_size, base.shape[1]
        segment = segment_size(width, length)
        ids = torch.unique(rows.reshape(-1).to(base.device, torch.int64))
        segments = (ids.unsqueeze(1) * (width // segment) + torch.arange(width // segment, device=base.device)).view(-1)
        groups = plan_groups(segments, segment, length, max(1, CHUNK_ELEMENTS // length))
        state = projection.begin_projection(z)
        values = torch.empty(segments.numel(), segment, dtype=torch.float32, device=base.device)
        for group in groups:
            x = walsh.mixed_input_at(state.draws(group.round_index), state.input(group.round_index), group.positions)
            mixed = torch.bmm(group.hadamard, x.view(x.shape[0], -1, segment))  # (k, slots, s)
            values[group.start:group.stop] = mixed[group.block, group.slot]
        delta = fwht(values, normalized=False).mul_(scale.float() * projection.chunk_factor())  # λ·c·M z at the segments
        out = base.clone()
        flat = out.view(-1, segment)
        flat.index_copy_(0, segments, flat.index_select(0, segments) + delta.to(base.dtype))
        ctx.projection, ctx.segments, ctx.groups, ctx.segment = projection, segments, groups, segment
        ctx.save_for_backward(z, scale)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        from .fastfood import gradients_from_transpose

        projection, segment = ctx.projection, ctx.segment
        z, scale = ctx.saved_tensors
        h = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            read = fwht(grad.reshape(-1, segment).index_select(0, ctx.segments).float(), normalized=False)  # H_s·g
            accumulator = projection.begin_transpose(grad.device)
            sums, rounds = accumulator
            for group in ctx.groups:
                placed = torch.zeros(group.hadamard.shape[0], group.hadamard.shape[1], segment, device=grad.device)
                placed[group.block, group.slot] = read[group.start:group.stop]
                transformed = torch.bmm(group.hadamard.transpose(1, 2), placed).view(placed.shape[0], -1)  # H_L·g_t
                walsh.accumulate_transformed(rounds.draws(group.round_index), sums[group.round_index], transformed,
                                             group.positions)
            h = projection.finish_transpose(accumulator)[: projection.in_features]
        grad_z, grad_scale = gradients_from_transpose(h, z, scale, ctx.needs_input_grad[0], ctx.needs_input_grad[1])
        return grad_z, grad_scale, grad if ctx.needs_input_grad[2] else None, None, None


def update_rows(z: torch.Tensor, scale: torch.Tensor, base: torch.Tensor, projection: Any, rows: torch.Tensor) -> torch.Tensor:
    """θ shaped and typed like the 2-D `base`: rows `rows` (any shape of ids) are base + scale·P·z, the others
    base; differentiable in z, scale and base. For a consumer that reads only those rows (an embedding
    lookup of `rows`) it is the whole θ = base + scale·P·z, at a fraction of the cost. Needs
    `supports_rows(projection, base)`."""
    return FastfoodRowsUpdate.apply(z, scale, base, projection, rows)
