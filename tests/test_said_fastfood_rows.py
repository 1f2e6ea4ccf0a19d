"""Issue 27: θ at the rows an embedding lookup reads (`methods.fastfood_rows`), against the plain dense
reference of version 3 (every factor an explicit matrix, float64) and autograd through it; and, on a
model, the lookup path gives the gradients of the whole θ.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import methods.fastfood_rows as rows_module
import methods.intrinsic_said as intrinsic_said
from conftest import tiny_model
from methods.fastfood import Fastfood
from methods.fastfood_rows import hadamard_rows, supports_rows, update_rows
from methods.intrinsic_said import lookup_rows
from test_said_fastfood import sylvester_hadamard
from test_said_fastfood_v3 import dense_matrix_v3

# (in_features, vocabulary, width): L = 16 with whole-block segments; L = 64 with 4 segments a block;
# 75 blocks of 64 (two rounds); rows of 3 segments that straddle blocks (L = 32, width 48)
SHAPES = [(10, 64, 16), (40, 75, 16), (40, 300, 16), (20, 50, 48)]


def reference_theta(projection: Fastfood, z: torch.Tensor, scale: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    return base + scale * (dense_matrix_v3(projection) @ z).view(base.shape)


@pytest.mark.parametrize("in_features, vocabulary, width", SHAPES)
def test_read_rows_are_theta_and_the_others_theta0(in_features, vocabulary, width):
    projection = Fastfood(in_features, vocabulary * width, seed=vocabulary + width, norm_preserving=True, version=3)
    z, scale = torch.randn(in_features, dtype=torch.float64), torch.tensor(1.3, dtype=torch.float64)
    base = torch.randn(vocabulary, width, dtype=torch.float64)
    ids = torch.randint(0, vocabulary, (3, 7), generator=torch.Generator().manual_seed(width))
    theta = update_rows(z, scale, base, projection, ids)
    expected = reference_theta(projection, z, scale, base)
    read = torch.zeros(vocabulary, dtype=torch.bool)
    read[ids.flatten()] = True
    assert theta.shape == base.shape and theta.dtype == base.dtype
    assert torch.allclose(theta[read], expected[read], atol=1e-5)
    assert torch.equal(theta[~read], base[~read])


@pytest.mark.parametrize("with_base_grad", [False, True])
@pytest.mark.parametrize("in_features, vocabulary, width", SHAPES)
def test_gradients_of_a_lookup_match_autograd_through_the_dense_reference(in_features, vocabulary, width, with_base_grad):
    projection = Fastfood(in_features, vocabulary * width, seed=7, norm_preserving=True, version=3)
    ids = torch.randint(0, vocabulary, (4, 5), generator=torch.Generator().manual_seed(1))
    weights = torch.randn(4, 5, width, dtype=torch.float64)  # loss = Σ weights·e² (e enters non-linearly)
    z = torch.randn(in_features, dtype=torch.float64, requires_grad=True)
    scale = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    base = torch.randn(vocabulary, width, dtype=torch.float64, requires_grad=with_base_grad)
    (weights * F.embedding(ids, update_rows(z, scale, base, projection, ids)).pow(2)).sum().backward()
    got = (z.grad.clone(), scale.grad.clone(), None if base.grad is None else base.grad.clone())
    z.grad = scale.grad = base.grad = None
    (weights * F.embedding(ids, reference_theta(projection, z, scale, base)).pow(2)).sum().backward()
    assert torch.allclose(got[0], z.grad, atol=1e-4) and torch.allclose(got[1], scale.grad, atol=1e-4)
    if with_base_grad:
        assert torch.allclose(got[2], base.grad, atol=1e-4)


@pytest.mark.parametrize("width", [12, 6, 20])
def test_short_segments_compute_the_same_when_allowed(width, monkeypatch):
    """Rows of 3 segments of 4, of 3 of 2, of 5 of 4 (the segment is the power of two dividing the row)."""
    monkeypatch.setattr(rows_module, "MIN_SEGMENT", 1)
    projection = Fastfood(12, 40 * width, seed=width, version=3)
    z, scale, base = torch.randn(12, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64), torch.zeros(40, width, dtype=torch.float64)
    ids = torch.tensor([0, 39, 17, 17, 5])
    assert supports_rows(projection, base)
    assert torch.allclose(update_rows(z, scale, base, projection, ids)[ids], reference_theta(projection, z, scale, base)[ids], atol=1e-5)


def test_hadamard_rows_are_rows_of_sylvesters_matrix():
    h = sylvester_hadamard(32) * 32 ** 0.5
    indices = torch.tensor([0, 5, 31, 16])
    assert torch.equal(hadamard_rows(indices, 32).double(), h[indices].round())


def test_rows_apply_to_version_3_and_rows_of_whole_segments_only():
    base = torch.zeros(64, 16)
    assert supports_rows(Fastfood(10, 64 * 16, seed=0, version=3), base)
    assert not supports_rows(Fastfood(10, 64 * 16, seed=0, version=1), base)
    assert not supports_rows(Fastfood(10, 64 * 16, seed=0, version=2), base)
    assert not supports_rows(Fastfood(10, 64 * 16, seed=0, version=3), base.view(-1))   # not rows
    assert not supports_rows(Fastfood(10, 64 * 12, seed=0, version=3), torch.zeros(64, 12))  # segments of 4


def test_only_a_plain_lookup_reads_rows():
    ids = torch.tensor([1, 2])
    assert lookup_rows(nn.Embedding(5, 4), "weight", (ids,)) is ids
    assert lookup_rows(nn.Embedding(5, 4, max_norm=1.0), "weight", (ids,)) is None  # renormalises the weight in place

    class Scaled(nn.Embedding):
        def forward(self, input):
            return super().forward(input) * self.weight.norm()   # reads the whole weight

    assert lookup_rows(Scaled(5, 4), "weight", (ids,)) is None
    assert lookup_rows(nn.Linear(4, 4), "weight", (torch.ones(1, 4),)) is None
    assert lookup_rows(nn.Embedding(5, 4), "weight", ()) is None  # input given by keyword: not seen


def said_v3(variant: str) -> nn.Module:
    model = tiny_model(variant)
    import surgery

    surgery.apply(model, {"method": "intrinsic-said", "options": {"dimension": 300, "seed": 2, "fastfood_version": 3}})
    with torch.no_grad():
        model.surgery.adapters.default.intrinsic.z.normal_(std=0.1, generator=torch.Generator().manual_seed(3))
        model.surgery.adapters.default.intrinsic.scales.uniform_(0.5, 2.0, generator=torch.Generator().manual_seed(4))
    return model.train()


@pytest.mark.parametrize("variant", ["v1.0", "v1.1"])
def test_a_model_gets_the_gradients_of_the_whole_theta(variant, batch, monkeypatch):
    """Every embedding call of a training step goes through update_rows, and z and λ get the gradients
    they get when the whole θ is computed (the path checked against the dense reference elsewhere)."""
    calls = []
    original = rows_module.FastfoodRowsUpdate.apply
    monkeypatch.setattr(rows_module.FastfoodRowsUpdate, "apply", lambda *a: calls.append(a[2].shape) or original(*a))
    model = said_v3(variant)
    torch.manual_seed(0)
    model(**batch).loss.backward()
    subspace = model.surgery.adapters.default.intrinsic
    got = (subspace.z.grad.clone(), subspace.scales.grad.clone())
    assert len(calls) == 2  # the encoder's and the decoder's embedding
    monkeypatch.setattr(intrinsic_said, "supports_rows", lambda projection, base: False)
    subspace.z.grad = subspace.scales.grad = None
    torch.manual_seed(0)
    model(**batch).loss.backward()
    assert len(calls) == 2
    assert torch.allclose(got[0], subspace.z.grad, atol=1e-5, rtol=1e-4)
    assert torch.allclose(got[1], subspace.scales.grad, atol=1e-5, rtol=1e-4)
