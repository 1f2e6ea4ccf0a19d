"""Issue 27: Fastfood regenerated per block (version 2), the chunked θ₀ + λ·P·z and its backward,
and the version-1 convention of older checkpoints — each against a plain reference written here.

The references build every factor as a dense matrix (H by Sylvester's construction with torch.kron,
Π and B and G as explicit matrices), draw version 2's numbers with a torch.Generator seeded per
block exactly as the convention says, and differentiate through them with autograd in float64.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

import surgery
from conftest import tiny_model
from methods.fastfood import Fastfood, block_seed, fwht, update

DATA = Path(__file__).parent / "data"


def sylvester_hadamard(length: int) -> torch.Tensor:
    """H₁ = [1], H₂ₙ = [[Hₙ, Hₙ], [Hₙ, −Hₙ]], orthonormal (÷√L), float64."""
    h = torch.ones(1, 1, dtype=torch.float64)
    while h.shape[0] < length:
        h = torch.kron(torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64), h)
    return h / math.sqrt(length)


def plain_draws(seed: int, block: int, length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Version 2's (signs, permutation, gaussian) of one block, as its convention states them."""
    generator = torch.Generator().manual_seed(block_seed(seed, block))
    gaussian = torch.randn(length, generator=generator).double()
    words = torch.randint(0, 2**32, ((length + 31) // 32,), generator=generator).tolist()
    signs = torch.tensor([-1.0 if (words[i // 32] >> (i % 32)) & 1 else 1.0 for i in range(length)], dtype=torch.float64)
    return signs, torch.randperm(length, generator=generator), gaussian


def stored_draws(projection: Fastfood, block: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Version 1's draws: the buffers drawn when the projection was made."""
    return (projection.signs[block].double(), projection.permutation[block].long(), projection.gaussian[block].double())


def dense_matrix(projection: Fastfood) -> torch.Tensor:
    """The (N, n) matrix: per block H·G·Π·H·B as explicit L×L matrices, stacked, first N rows and n columns, × c."""
    if projection.version == 3:
        from test_said_fastfood_v3 import dense_matrix_v3

        return dense_matrix_v3(projection)
    length = projection.padded_size
    h = sylvester_hadamard(length)
    rows, energy = [], 0.0
    for block in range(projection.num_blocks):
        signs, permutation, gaussian = (stored_draws(projection, block) if projection.version == 1
                                        else plain_draws(projection.seed, block, length))
        # H·diag(G)·Π·H·diag(signs) with (Π v)ᵢ = v[π(i)], so Π·H = H's rows in the order π; a diagonal
        # factor on the right scales columns: (H * G) @ H[π] * signs, the same product in one L×L matmul
        # instead of four (the test's cost was these dense products)
        rows.append((h * gaussian) @ h[permutation] * signs)
        energy += gaussian.pow(2).sum().item()
    matrix = torch.cat(rows)[: projection.out_features, : projection.in_features]
    if projection.norm_preserving:  # c = L·√(B / (N·ΣG²))
        matrix = matrix * length * math.sqrt(projection.num_blocks / (projection.out_features * energy))
    return matrix


SHAPES = [(1, 1), (3, 4), (5, 19), (8, 8), (9, 40), (16, 7), (20, 200)]


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("norm_preserving", [False, True])
@pytest.mark.parametrize("in_features, out_features", SHAPES)
def test_the_same_z_gives_the_same_delta_as_the_dense_reference(in_features, out_features, norm_preserving, version):
    projection = Fastfood(in_features, out_features, seed=in_features * 100 + out_features,
                          norm_preserving=norm_preserving, version=version)
    z = torch.randn(in_features, dtype=torch.float64)
    assert torch.allclose(projection(z).double(), dense_matrix(projection) @ z, atol=1e-5)


def test_version_2_holds_no_draws_and_regenerates_the_same_ones(monkeypatch):
    projection = Fastfood(20, 300, seed=3, version=2, norm_preserving=True)
    assert list(projection.buffers()) == [] and projection.state_dict() == {}
    z = torch.randn(20)
    first = projection(z)
    assert torch.equal(first, projection(z)) and torch.equal(first, Fastfood(20, 300, seed=3, version=2, norm_preserving=True)(z))
    assert not torch.equal(first, Fastfood(20, 300, seed=4, version=2, norm_preserving=True)(z))
    # chunking is not part of the convention: one block per chunk computes the same numbers
    monkeypatch.setattr("methods.fastfood.CHUNK_ELEMENTS", 1)
    assert torch.allclose(projection(z), first, atol=1e-6)


def test_block_seeds_are_pinned():
    """The convention's seeds are part of the checkpoint format: changing them changes every version-2 model."""
    assert [block_seed(0, 0), block_seed(0, 1), block_seed(7, 0)] == [
        4685109482889842056, 3896129788067985924, 4428597887881648701]


@pytest.mark.parametrize("version", [1, 2])
def test_orthogonal_parts_preserve_the_norm(version):
    """B (±1), Π (a permutation) and H (orthonormal) keep ‖v‖ exactly: ‖H·Π·H·B v‖ = ‖v‖ per block."""
    projection = Fastfood(30, 200, seed=5, version=version)
    signs, permutation, gaussian = projection.draws(0, projection.num_blocks)
    assert signs.unique().tolist() == [-1.0, 1.0] and abs(signs.mean().item()) < 0.2  # both signs, about as often
    assert all(torch.equal(row.sort().values, torch.arange(projection.padded_size)) for row in permutation)
    assert (gaussian != 0).all()
    v = torch.randn(projection.num_blocks, projection.padded_size, dtype=torch.float64)
    mixed = fwht(fwht(signs.double() * v).gather(1, permutation))
    assert torch.allclose(mixed.norm(dim=1), v.norm(dim=1))


def test_norm_preserving_projection_keeps_the_norm_of_z_for_large_tensors():
    """‖Pz‖ ≈ ‖z‖ however many blocks are stacked (N ≥ L; fewer outputs than z's entries keep it only on average)."""
    z = torch.randn(100, generator=torch.Generator().manual_seed(0))
    for out_features in (5_000, 200_000):
        projection = Fastfood(100, out_features, seed=out_features, norm_preserving=True, version=2)
        assert abs(projection(z).norm().item() / z.norm().item() - 1.0) < 0.1, out_features


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("with_base_grad", [False, True])
def test_gradients_to_z_scale_and_base_match_autograd_through_the_dense_reference(version, with_base_grad):
    projection = Fastfood(12, 70, seed=11, norm_preserving=True, version=version)
    weights = torch.randn(7, 10, dtype=torch.float64)  # loss = Σ weights·θ² (θ enters non-linearly)
    z = torch.randn(12, dtype=torch.float64, requires_grad=True)
    scale = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
    base = torch.randn(7, 10, dtype=torch.float64, requires_grad=with_base_grad)
    (weights * update(z, scale, base, projection).pow(2)).sum().backward()
    got = (z.grad.clone(), scale.grad.clone(), None if base.grad is None else base.grad.clone())
    z.grad = scale.grad = base.grad = None
    theta = base + scale * (dense_matrix(projection) @ z).view(7, 10)
    (weights * theta.pow(2)).sum().backward()
    assert torch.allclose(got[0], z.grad, atol=1e-4) and torch.allclose(got[1], scale.grad, atol=1e-4)
    assert (got[2] is None) == (not with_base_grad)
    if with_base_grad:
        assert torch.allclose(got[2], base.grad, atol=1e-4)


def test_the_backward_keeps_only_z_and_the_scale():
    """No Δ (N numbers) is saved for the backward: the saved tensors are z (n) and λ (1)."""
    projection = Fastfood(16, 4096, seed=0, version=2)
    z, scale = torch.randn(16, requires_grad=True), torch.tensor(1.0, requires_grad=True)
    saved: list[int] = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved.append(tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        theta = update(z, scale, torch.zeros(4096), projection)
    assert sorted(saved) == [1, 16]
    theta.sum().backward()
    assert z.grad is not None and scale.grad is not None


@pytest.mark.parametrize("version", [1, 2])
def test_a_checkpoint_of_an_earlier_convention_loads_and_computes_what_it_computed(version):
    """tests/data/said-v1-checkpoint was saved by main's code before versions existed (make_said_v1_checkpoint.py),
    said-v2-checkpoint by version 2's code before version 3 existed (make_said_v2_checkpoint.py)."""
    from safetensors.torch import load_file

    expected = load_file(DATA / f"said-v{version}-expected.safetensors")
    model = tiny_model("v1.0")
    surgery.load_adapter(model, DATA / f"said-v{version}-checkpoint")
    generator = torch.Generator().manual_seed(1)  # the batch the fixture was computed on
    input_ids = torch.randint(2, 96, (3, 9), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 6:] = 0
    input_ids[1, 6:] = 0
    labels = torch.randint(2, 96, (3, 5), generator=generator)
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).logits
        q = model.surgery.adapters.default.intrinsic.tensor_names.index("encoder.block.0.layer.0.SelfAttention.q.weight")
        delta = model.surgery_fastfood__default[q](model.surgery.adapters.default.intrinsic.z)
    assert all(p.version == version for p in model.surgery_fastfood__default)
    assert torch.allclose(delta[:64], expected["q_delta"], atol=1e-6)
    assert torch.allclose(logits, expected["logits"], atol=1e-5)
    assert not torch.allclose(logits, tiny_model("v1.0")(input_ids=input_ids, attention_mask=attention_mask,
                                                         labels=labels).logits, atol=1e-3)


def said_v2(variant: str = "v1.0", version: int = 2, **options) -> nn.Module:
    model = tiny_model(variant)
    surgery.apply(model, {"method": "intrinsic_said", "options": {"dimension": 300, "seed": 2, "fastfood_version": version, **options}})
    with torch.no_grad():
        model.surgery.adapters.default.intrinsic.z.normal_(std=0.1, generator=torch.Generator().manual_seed(3))
        model.surgery.adapters.default.intrinsic.scales.uniform_(0.5, 2.0, generator=torch.Generator().manual_seed(4))
    return model


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("variant", ["v1.0", "v1.1"])
def test_version_2_and_3_weights_are_theta0_plus_lambda_times_the_dense_projection(variant, version):
    model = said_v2(variant, version)
    subspace, parameters = model.surgery.adapters.default.intrinsic, dict(model.named_parameters())
    z = subspace.z.detach().double()
    assert model.surgery_fastfood__default[0].version == version
    assert (list(model.surgery_fastfood__default.buffers()) == []) == (version == 2)
    with torch.no_grad():
        for index, name in enumerate(subspace.tensor_names):
            theta0 = parameters[name]
            got = subspace.weight(index, theta0, model.surgery_fastfood__default[index])
            expected = theta0.double() + subspace.scales[index].double() * (dense_matrix(model.surgery_fastfood__default[index]) @ z).view(theta0.shape)
            assert torch.allclose(got.double(), expected, atol=1e-5), name


@pytest.mark.parametrize("version", [2, 3])
def test_version_2_and_3_fold_exactly_and_the_eval_cache_is_the_unfolded_model(batch, version):
    model = said_v2(version=version).eval()
    with torch.no_grad():
        unfolded = model(**batch).logits
        cached = model(**batch).logits  # second call: served from the eval-mode cache
    surgery.fold(model)
    with torch.no_grad():
        folded = model(**batch).logits
    assert torch.equal(cached, unfolded) and torch.equal(folded, unfolded)


@pytest.mark.parametrize("version", [2, 3])
def test_version_2_and_3_checkpoints_round_trip_and_differ_from_version_1(batch, tmp_path, version):
    model = said_v2(version=version)
    folder = surgery.save_adapter(model, tmp_path / "said")
    fresh = tiny_model()
    surgery.load_adapter(fresh, folder)
    assert all(p.version == version for p in fresh.surgery_fastfood__default)
    old = tiny_model()
    surgery.apply(old, {"method": "intrinsic_said", "options": {"dimension": 300, "seed": 2}})
    with torch.no_grad():
        old.surgery.adapters.default.intrinsic.z.copy_(model.surgery.adapters.default.intrinsic.z)
        old.surgery.adapters.default.intrinsic.scales.copy_(model.surgery.adapters.default.intrinsic.scales)
        assert torch.equal(fresh(**batch).logits, model(**batch).logits)
        assert not torch.allclose(old(**batch).logits, model(**batch).logits, atol=1e-4)


@pytest.mark.parametrize("version", [2, 3])
def test_version_2_and_3_train_and_every_scale_gets_a_gradient(batch, version):
    model = said_v2(version=version).train()
    model(**batch).loss.backward()
    assert (model.surgery.adapters.default.intrinsic.scales.grad != 0).all() and (model.surgery.adapters.default.intrinsic.z.grad != 0).any()


def test_an_unknown_version_is_refused_at_plan_time():
    with pytest.raises(surgery.RecipeError) as error:
        surgery.plan(tiny_model(), {"method": "intrinsic_said", "options": {"dimension": 300, "fastfood_version": 4}})
    assert error.value.key == "options.fastfood_version" and "4" in str(error.value)
