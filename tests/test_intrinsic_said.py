"""Intrinsic-SAID and the Fastfood transform: checked against explicit dense constructions."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import surgery
from conftest import losses_on_a_fixed_mapping, tiny_model
from methods.fastfood import Fastfood, fwht
from runners.finetune.protocol import paper_defaults
from runners.tasks import get_task
from surgery.errors import RecipeError
from surgery.checkpoint import WEIGHTS_FILE

VARIANTS = ["v1.0", "v1.1"]
DIMENSION = 300


def said(variant: str = "v1.0", dimension: int = DIMENSION, seed: int = 0, **options) -> nn.Module:
    model = tiny_model(variant)
    surgery.apply(model, {"method": "intrinsic_said", "options": {"dimension": dimension, "seed": seed, **options}})
    return model


# -- the transforms, against dense matrices ---------------------------------------------------

def sylvester_hadamard(length: int) -> torch.Tensor:
    """H₁ = [1], H₂ₙ = [[Hₙ, Hₙ], [Hₙ, −Hₙ]], built with torch.kron (float64)."""
    h = torch.ones(1, 1, dtype=torch.float64)
    while h.shape[0] < length:
        h = torch.kron(torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64), h)
    return h


@pytest.mark.parametrize("length", [1, 2, 4, 8, 16, 32, 64, 256, 1024, 2048])  # 1, 2 and 3 passes
def test_fwht_equals_the_sylvester_hadamard_matrix(length):
    x = torch.randn(3, 2, length, dtype=torch.float64)
    h = sylvester_hadamard(length)
    assert torch.allclose(fwht(x, normalized=False), x @ h)
    assert torch.allclose(fwht(x), x @ h / math.sqrt(length))


def test_fwht_matches_scipy_hadamard():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    h = torch.from_numpy(scipy_linalg.hadamard(32)).double()
    x = torch.randn(5, 32, dtype=torch.float64)
    assert torch.allclose(fwht(x, normalized=False), x @ h)


@settings(max_examples=25, deadline=None)
@given(exponent=st.integers(0, 13), seed=st.integers(0, 2**16))
def test_normalised_fwht_is_an_orthonormal_involution(exponent, seed):
    x = torch.randn(2, 2**exponent, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    assert torch.allclose(fwht(fwht(x)), x)
    assert torch.allclose(fwht(x).norm(dim=-1), x.norm(dim=-1))


def test_fwht_rejects_lengths_that_are_not_powers_of_two():
    with pytest.raises(ValueError, match="power-of-two"):
        fwht(torch.zeros(6))


def dense_factors(projection: Fastfood, block: int) -> list[torch.Tensor]:
    """[H, G, Π, H, B] of one block as explicit L×L matrices (float64)."""
    length = projection.padded_size
    h = sylvester_hadamard(length) / math.sqrt(length)
    permutation = torch.zeros(length, length, dtype=torch.float64)
    permutation[torch.arange(length), projection.permutation[block].long()] = 1.0  # (Π v)ᵢ = v[π(i)]
    return [h, torch.diag(projection.gaussian[block].double()), permutation, h, torch.diag(projection.signs[block].double())]


def norm_preserving_scale(projection: Fastfood) -> float:
    """c = L·√(B / (N·ΣG²)), from its formula: one block (N ≤ L) gives the authors' divisor
    √(L/N)·√(L/ΣG²) (rabeehk/compacter, projections/intrinsic.py, written for the orthonormal H)."""
    length, blocks, n = projection.padded_size, projection.num_blocks, projection.out_features
    return length * math.sqrt(blocks / (n * projection.gaussian.double().pow(2).sum().item()))


def expected_scale(projection: Fastfood) -> float:
    return norm_preserving_scale(projection) if projection.norm_preserving else 1.0


def dense_fastfood(projection: Fastfood) -> torch.Tensor:
    """The (N, n) matrix of a Fastfood projection: the blocks' products, stacked, restricted to z's columns."""
    blocks = []
    for b in range(projection.num_blocks):
        h1, g, p, h2, signs = dense_factors(projection, b)
        blocks.append(h1 @ g @ p @ h2 @ signs)
    stacked = torch.cat(blocks, dim=0)  # (blocks·L, L)
    # zero-padded input: first n columns
    return expected_scale(projection) * stacked[: projection.out_features, : projection.in_features]


def dense_fastfood_times(projection: Fastfood, z: torch.Tensor) -> torch.Tensor:
    """dense_fastfood(projection) @ z, multiplying the explicit factors into the vector one by one (cheaper)."""
    padded = torch.cat([z.double(), torch.zeros(projection.padded_size - z.numel(), dtype=torch.float64)])
    outputs = []
    for b in range(projection.num_blocks):
        v = padded
        for factor in reversed(dense_factors(projection, b)):
            v = factor @ v
        outputs.append(v)
    return expected_scale(projection) * torch.cat(outputs)[: projection.out_features]


@pytest.mark.parametrize("norm_preserving", [False, True])
@pytest.mark.parametrize("in_features, out_features", [(1, 1), (3, 4), (5, 19), (8, 8), (9, 40), (16, 7)])
def test_fastfood_equals_its_dense_construction(in_features, out_features, norm_preserving):
    projection = Fastfood(in_features, out_features, seed=in_features * 100 + out_features, norm_preserving=norm_preserving)
    z = torch.randn(in_features, dtype=torch.float64)
    dense = dense_fastfood(projection)
    assert dense.shape == (out_features, in_features)
    assert torch.allclose(projection(z).double(), dense @ z, atol=1e-5)
    # B is ±1, Π a permutation, G has no zeros: the ingredients are what the docstring says.
    assert set(projection.signs.unique().tolist()) <= {-1, 1}
    assert all(torch.equal(row.sort().values.long(), torch.arange(projection.padded_size)) for row in projection.permutation)


def test_fastfood_blocks_keep_the_norm_in_expectation():
    z = torch.randn(12)
    squared = torch.stack([Fastfood(12, 16, seed=s)(z).pow(2).sum() for s in range(400)])
    assert abs(squared.mean().item() / z.pow(2).sum().item() - 1.0) < 0.1


def test_fastfood_is_reproducible_from_its_seed_and_differs_across_seeds():
    a, b, c = Fastfood(7, 30, seed=3), Fastfood(7, 30, seed=3), Fastfood(7, 30, seed=4)
    z = torch.randn(7)
    assert torch.equal(a(z), b(z)) and not torch.equal(a(z), c(z))
    assert "signs" not in a.state_dict()  # regenerated from the seed, never saved


# -- the method -------------------------------------------------------------------------------

def distinct_tensors(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    found: dict[int, tuple[str, torch.Tensor]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        found.setdefault(id(p), (name, p))
    return list(found.values())


def subspace_tensors(model: nn.Module, output_layer: str = "frozen") -> list[tuple[str, torch.Tensor]]:
    """The tensors SAID reparametrises: all, but an untied output layer when it stays frozen."""
    tensors = distinct_tensors(model)
    if output_layer == "frozen" and model.lm_head.weight is not model.shared.weight:
        tensors = [(n, p) for n, p in tensors if p is not model.lm_head.weight]
    return tensors


@pytest.mark.parametrize("output_layer", ["frozen", "in_subspace"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_trains_exactly_d_prime_numbers_with_one_scale_per_tensor(variant, output_layer):
    model = tiny_model(variant)
    tensors = subspace_tensors(model, output_layer)
    report = surgery.report(surgery.apply(model, {"method": "intrinsic_said", "options": {"dimension": DIMENSION,
                                                                          "output_layer": output_layer}}))
    assert report.trainable == DIMENSION
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {"surgery.adapters.default.intrinsic.z",
                                                                              "surgery.adapters.default.intrinsic.scales"}
    assert model.surgery.adapters.default.intrinsic.scales.numel() == len(tensors)
    assert model.surgery.adapters.default.intrinsic.z.numel() == DIMENSION - len(tensors)
    names = [n for n, _ in distinct_tensors(model)]
    # v1.0 ties embedding and output layer: one tensor, kept (the input embedding moves). The untied
    # v1.1 head is one more tensor, reparametrised only with output_layer: in_subspace.
    assert ("lm_head.weight" in model.surgery.adapters.default.intrinsic.tensor_names) == (variant == "v1.1" and output_layer == "in_subspace")
    assert "shared.weight" in model.surgery.adapters.default.intrinsic.tensor_names
    assert ("lm_head.weight" in names) == (variant == "v1.1")
    if variant == "v1.0":
        assert model.lm_head.weight is model.shared.weight


@pytest.mark.parametrize("variant", VARIANTS)
def test_logits_are_unchanged_at_init(variant, batch):
    base, model = tiny_model(variant), said(variant)
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, base(**batch).logits)


def capture_effective_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """module name → the `weight` its forward sees (read by a pre-hook registered after the method's)."""
    seen: dict[str, torch.Tensor] = {}
    for name, module in model.named_modules():
        if "weight" in module._parameters:
            module.register_forward_pre_hook(lambda m, a, name=name: seen.__setitem__(name, m.weight.detach().clone()))
    return seen


@pytest.mark.parametrize("options", [{}, {"projection_scale": "unit_blocks", "output_layer": "in_subspace"}])
@pytest.mark.parametrize("variant", VARIANTS)
def test_every_weight_is_theta0_plus_lambda_times_the_dense_projection_of_z(variant, batch, options):
    model = said(variant, **options)
    frozen_head = options.get("output_layer", "frozen") == "frozen"
    subspace = model.surgery.adapters.default.intrinsic
    with torch.no_grad():
        subspace.z.normal_(std=0.1)
        subspace.scales.uniform_(0.5, 2.0)
    seen = capture_effective_weights(model)
    with torch.no_grad():
        model(**batch)
    parameters = dict(model.named_parameters())
    index_of = {id(parameters[name]): index for index, name in enumerate(subspace.tensor_names)}
    z = subspace.z.detach().double()
    modules = dict(model.named_modules())
    checked = set()
    for module_name, effective in seen.items():  # every module that ran, e.g. encoder.embed_tokens for shared.weight
        theta0 = modules[module_name].weight  # outside forward: the frozen parameter itself
        assert isinstance(theta0, nn.Parameter) and not theta0.requires_grad
        if module_name == "lm_head" and frozen_head:  # the paper's frozen output layer reads θ₀ itself
            assert torch.equal(effective, theta0)
            continue
        index = index_of[id(theta0)]
        projection = model.surgery_fastfood__default[index]
        assert projection.norm_preserving == ("projection_scale" not in options)
        expected = theta0.double() + subspace.scales[index].double() * dense_fastfood_times(projection, z).view(theta0.shape)
        assert torch.allclose(effective.double(), expected, atol=1e-4), module_name
        checked.add(index)
    # every subspace tensor ran through its hook
    assert len(checked) == len(subspace_tensors(tiny_model(variant), options.get("output_layer", "frozen")))


def test_tied_embedding_stays_tied_when_the_output_layer_is_in_the_subspace(batch):
    model = said("v1.0", output_layer="in_subspace")
    with torch.no_grad():
        model.surgery.adapters.default.intrinsic.z.normal_()
        model.surgery.adapters.default.intrinsic.scales.uniform_(0.5, 2.0)
    seen = capture_effective_weights(model)
    with torch.no_grad():
        model(**batch)
    users = ["encoder.embed_tokens", "decoder.embed_tokens", "lm_head"]  # modules holding shared.weight that run
    assert all(u in seen for u in users)
    first = seen["encoder.embed_tokens"]
    assert not torch.equal(first, model.shared.weight)
    assert all(torch.equal(seen[u], first) for u in users)


def test_each_tensor_has_its_own_projection_fixed_by_the_seed():
    model, again, other = said(seed=1), said(seed=1), said(seed=2)
    names = model.surgery.adapters.default.intrinsic.tensor_names
    q = names.index("encoder.block.0.layer.0.SelfAttention.q.weight")
    k = names.index("encoder.block.0.layer.0.SelfAttention.k.weight")  # same shape as q
    z = torch.randn(model.surgery.adapters.default.intrinsic.z.numel())
    with torch.no_grad():
        assert not torch.equal(model.surgery_fastfood__default[q](z), model.surgery_fastfood__default[k](z))
        assert torch.equal(model.surgery_fastfood__default[q](z), again.surgery_fastfood__default[q](z))
        assert not torch.equal(model.surgery_fastfood__default[q](z), other.surgery_fastfood__default[q](z))


def test_parameters_are_restored_after_each_call_even_after_an_error():
    model = said()
    q = model.encoder.block[0].layer[0].SelfAttention.q
    with torch.no_grad():
        model.surgery.adapters.default.intrinsic.z.normal_()
        q(torch.randn(1, 2, q.in_features))
    assert q.weight is q._parameters["weight"]
    with pytest.raises(RuntimeError):
        q(torch.randn(1, 2, q.in_features + 1))  # wrong width: the forward raises
    assert "weight" not in q.__dict__ and q.weight is q._parameters["weight"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradients_reach_z_and_every_scale_and_one_step_moves_only_them(variant, batch):
    model = said(variant).train()
    with torch.no_grad():  # at z = 0 every λ has zero gradient (Δ = 0); move off the origin first
        model.surgery.adapters.default.intrinsic.z.normal_(std=0.01)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model(**batch).loss.backward()
    trainable = {"surgery.adapters.default.intrinsic.z", "surgery.adapters.default.intrinsic.scales"}
    for n, p in model.named_parameters():
        assert (p.grad is not None) == (n in trainable), n
    # Every tensor is reparametrised: each λ gets a gradient (a tensor the forward never read would not).
    assert (model.surgery.adapters.default.intrinsic.scales.grad != 0).all()
    optimizer.step()
    assert {n for n, p in model.named_parameters() if not torch.equal(p, before[n])} == trainable


def test_learns_a_fixed_mapping_at_the_recipe_learning_rate():
    """SAID at its recipe rate 3e-2, d' = 300: final loss < 0.5 × initial within 15 Adam steps."""
    torch.manual_seed(0)
    model = tiny_model(d_model=32, d_kv=8, d_ff=64).train()
    source = surgery.load_recipe("intrinsic-said").source
    plan = surgery.plan(model, {**source, "options": {**source["options"], "dimension": 300}})
    learning_rate = paper_defaults(get_task("rte"), "intrinsic-said")["learning_rate"]  # appendix Table 4
    assert learning_rate == 3e-2
    surgery.apply(model, plan)
    losses = losses_on_a_fixed_mapping(model, learning_rate, 15)
    assert losses[-1] < 0.5 * losses[0], losses


def test_generate_works():
    model = said("v1.1")
    with torch.no_grad():
        model.surgery.adapters.default.intrinsic.z.normal_(std=0.1)
        out = model.generate(input_ids=torch.tensor([[5, 6, 7], [8, 9, 0]]), attention_mask=torch.tensor([[1, 1, 1], [1, 1, 0]]),
                             max_new_tokens=4, num_beams=2, do_sample=False)
    assert out.shape[0] == 2


@pytest.mark.parametrize("variant", VARIANTS)
def test_adapter_checkpoint_holds_only_z_and_lambda_and_round_trips(variant, batch, tmp_path):
    from safetensors.torch import load_file

    model = said(variant, seed=7)
    with torch.no_grad():
        model.surgery.adapters.default.intrinsic.z.normal_(std=0.1)
        model.surgery.adapters.default.intrinsic.scales.uniform_(0.5, 2.0)
    folder = surgery.save_adapter(model, tmp_path / variant)
    stored = load_file(folder / WEIGHTS_FILE)
    assert sorted(stored) == ["surgery.intrinsic.scales", "surgery.intrinsic.z"]
    assert sum(t.numel() for t in stored.values()) == DIMENSION
    fresh = tiny_model(variant)
    surgery.load_adapter(fresh, folder)
    with torch.no_grad():
        assert torch.equal(fresh(**batch).logits, model(**batch).logits)
        assert not torch.equal(fresh(**batch).logits, tiny_model(variant)(**batch).logits)


@pytest.mark.parametrize("variant", VARIANTS)
def test_dimension_below_tensors_plus_one_fails_at_plan_time_naming_both_numbers(variant):
    model = tiny_model(variant)
    tensors = len(subspace_tensors(model))
    for bad in (tensors, tensors - 10, 5):
        with pytest.raises(RecipeError) as error:
            surgery.plan(model, {"method": "intrinsic_said", "options": {"dimension": bad}})
        assert error.value.key == "options.dimension" and error.value.value == bad
        assert f"{bad}" in str(error.value) and f"({tensors})" in str(error.value) and f"≥ {tensors + 1}" in str(error.value)
    assert surgery.plan(model, {"method": "intrinsic_said", "options": {"dimension": tensors + 1}}).trainable_parameters == tensors + 1
    assert not hasattr(model, "surgery")


@pytest.mark.parametrize("options, key", [({"dim": 100}, "options.dim"), ({"dimension": 1}, "options.dimension"),
                                          ({"dimension": "20K"}, "options.dimension")])
def test_bad_options_fail_at_plan_time(options, key):
    with pytest.raises(RecipeError) as error:
        surgery.plan(tiny_model(), {"method": "intrinsic_said", "options": options})
    assert error.value.key == key and key in str(error.value)
