"""Issue 27, Fastfood version 3 (`methods.fastfood_walsh`): per-round G, Π, B and a Walsh sign pattern per block,
each checked against a plain reference written here — the convention's draws re-made with a torch.Generator,
every factor an explicit dense matrix (H by Sylvester's construction, χ_k by popcount), autograd in float64.
"""

from __future__ import annotations

import math

import pytest
import torch

from methods.fastfood import Fastfood, block_seed, update
from test_said_fastfood import sylvester_hadamard


def plain_round(seed: int, round_index: int, length: int):
    """Round `round_index`'s (G, B, π, a, c) as the version-3 convention states them."""
    generator = torch.Generator().manual_seed(block_seed(seed, round_index))
    gaussian = torch.randn(length, generator=generator).double()
    words = torch.randint(0, 2**32, ((length + 31) // 32,), generator=generator).tolist()
    signs = torch.tensor([-1.0 if (words[i // 32] >> (i % 32)) & 1 else 1.0 for i in range(length)], dtype=torch.float64)
    permutation = torch.randperm(length, generator=generator)
    a, c = torch.randint(0, 2**32, (2,), generator=generator).tolist()
    return gaussian, signs, permutation, (a | 1) % length if length > 1 else 0, c % length


def walsh_function(k: int, length: int) -> torch.Tensor:
    """χ_k(i) = (−1)^popcount(i AND k)."""
    return torch.tensor([(-1.0) ** bin(i & k).count("1") for i in range(length)], dtype=torch.float64)


def dense_matrix_v3(projection: Fastfood) -> torch.Tensor:
    """(N, n): block b = rL + t is H·G_r·Π_r·H·diag(B_r ⊙ χ_{k_t}), k_t = ((a·t) mod L) XOR c; stacked, cut, × c."""
    length = projection.padded_size
    h = sylvester_hadamard(length)
    rows, energy = [], 0.0
    for block in range(projection.num_blocks):
        round_index, t = divmod(block, length)
        gaussian, signs, permutation, a, c = plain_round(projection.seed, round_index, length)
        d = signs * walsh_function(((a * t) % length) ^ c, length)
        # H·diag(G)·Π·H·diag(d) with (Π v)ᵢ = v[π(i)], so Π·H = H's rows in the order π; a diagonal
        # factor on the right scales columns: (H * G) @ H[π] * d, the same product in one L×L matmul
        # instead of four (the test's cost was these dense products)
        rows.append((h * gaussian) @ h[permutation] * d)
        energy += gaussian.pow(2).sum().item()
    matrix = torch.cat(rows)[: projection.out_features, : projection.in_features]
    if projection.norm_preserving:
        matrix = matrix * length * math.sqrt(projection.num_blocks / (projection.out_features * energy))
    return matrix


SHAPES = [(1, 1), (1, 5), (3, 4), (5, 19), (8, 8), (4, 70), (9, 40), (16, 7), (20, 200)]  # (1, 5), (4, 70): several rounds


@pytest.mark.parametrize("norm_preserving", [False, True])
@pytest.mark.parametrize("in_features, out_features", SHAPES)
def test_the_same_z_gives_the_same_delta_as_the_dense_reference(in_features, out_features, norm_preserving):
    projection = Fastfood(in_features, out_features, seed=in_features * 100 + out_features,
                          norm_preserving=norm_preserving, version=3)
    z = torch.randn(in_features, dtype=torch.float64)
    assert torch.allclose(projection(z).double(), dense_matrix_v3(projection) @ z, atol=1e-5)


def test_chunking_is_not_part_of_the_convention(monkeypatch):
    projection = Fastfood(6, 100, seed=2, version=3, norm_preserving=True)
    z = torch.randn(6)
    whole = projection(z)
    monkeypatch.setattr("methods.fastfood.CHUNK_ELEMENTS", 1)
    assert torch.allclose(projection(z), whole, atol=1e-6)


@pytest.mark.parametrize("with_base_grad", [False, True])
@pytest.mark.parametrize("in_features, out_features", [(12, 70), (4, 70)])
def test_gradients_to_z_scale_and_base_match_autograd_through_the_dense_reference(in_features, out_features, with_base_grad):
    projection = Fastfood(in_features, out_features, seed=11, norm_preserving=True, version=3)
    weights = torch.randn(7, 10, dtype=torch.float64)  # loss = Σ weights·θ² (θ enters non-linearly)
    z = torch.randn(in_features, dtype=torch.float64, requires_grad=True)
    scale = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
    base = torch.randn(7, 10, dtype=torch.float64, requires_grad=with_base_grad)
    (weights * update(z, scale, base, projection).pow(2)).sum().backward()
    got = (z.grad.clone(), scale.grad.clone(), None if base.grad is None else base.grad.clone())
    z.grad = scale.grad = base.grad = None
    theta = base + scale * (dense_matrix_v3(projection) @ z).view(7, 10)
    (weights * theta.pow(2)).sum().backward()
    assert torch.allclose(got[0], z.grad, atol=1e-4) and torch.allclose(got[1], scale.grad, atol=1e-4)
    if with_base_grad:
        assert torch.allclose(got[2], base.grad, atol=1e-4)


def test_every_block_of_a_round_has_its_own_sign_pattern():
    """k_t = ((a·t) mod L) XOR c is a bijection of a round's blocks onto [0, L): no two blocks are the same map."""
    projection = Fastfood(16, 16 * 16, seed=4, version=3)
    matrix = dense_matrix_v3(projection).view(16, 16, 16)
    for first in range(16):
        for second in range(first):
            assert not torch.allclose(matrix[first], matrix[second])


def test_the_round_draws_are_what_the_convention_says_and_nothing_per_block_is_held():
    projection = Fastfood(20, 3000, seed=3, version=3)  # L = 32, 94 blocks: 3 rounds
    assert projection.gaussian.shape == (3, 32) and projection.state_dict() == {}
    for r in range(3):
        gaussian, signs, permutation, a, c = plain_round(3, r, 32)
        assert torch.equal(projection.gaussian[r].double(), gaussian) and torch.equal(projection.signs[r].double(), signs)
        assert torch.equal(projection.permutation[r].long(), permutation) and projection.walsh_keys[r] == (a, c)


def test_a_full_round_is_well_conditioned():
    """A full round's Gram matrix Σ_t M_tᵀM_t is ΣG²·I: the Walsh patterns average the off-diagonal of
    (H·G·Π·H)ᵀ(H·G·Π·H) out exactly (Σ_k χ_k(i)·χ_k(j) = L·δᵢⱼ), so no direction of z is lost — unlike
    a single block, whose singular values are the |Gᵢ|. Checked on the projection's own columns."""
    projection = Fastfood(16, 16 * 16, seed=9, version=3)
    matrix = torch.stack([projection(column) for column in torch.eye(16)], dim=1).double()  # (256, 16)
    gram, energy = matrix.T @ matrix, plain_round(9, 0, 16)[0].pow(2).sum()
    assert torch.allclose(gram, energy * torch.eye(16, dtype=torch.float64), atol=1e-4)
    single = matrix[:16]  # block 0 alone: singular values |G|, far from equal
    assert single.svd().S.max() / single.svd().S.min() > 3


def test_norm_preserving_projection_keeps_the_norm_of_z_for_large_tensors():
    z = torch.randn(100, generator=torch.Generator().manual_seed(0))
    for out_features in (5_000, 200_000):
        projection = Fastfood(100, out_features, seed=out_features, norm_preserving=True, version=3)
        assert abs(projection(z).norm().item() / z.norm().item() - 1.0) < 0.1, out_features
