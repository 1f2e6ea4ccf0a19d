"""PHM / LPHM layers checked against an independent ``torch.kron`` computation.

The reference below never calls into ``methods.phm``: it rebuilds ``W = Σ_i kron(A_i, B_i)``
with a Python loop from leaf copies of the layer's own factors and runs ``x @ W + b``, so
forward values and every gradient can be compared number by number.
"""

from __future__ import annotations

import copy
import doctest
import importlib
import pkgutil
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import methods.phm as phm
from methods.phm import LowRankPHMLinear, PHMLinear, PHMRule, choose_compute_path, kron_sum

FP32_TOL = dict(rtol=1e-5, atol=1e-5)
# bf16 keeps 8 significant bits (relative step 2^-8 ≈ 0.4 %); the factored and dense paths round
# different intermediates, so allow 3 % of the largest reference magnitude.
BF16_REL_TOL = 3e-2

LAYER_KINDS = ("phm", "lphm-r1", "lphm-r3")
# (k, d, n): a down-projection, an up-projection and a square one, so both orders of the
# factored path and n = 1 / n = d are exercised.
SHAPES = ((24, 8, 4), (8, 24, 2), (6, 6, 6), (6, 9, 1))


# --------------------------------------------------------------------------------------------
# Independent reference
# --------------------------------------------------------------------------------------------


def reference_blocks(layer: nn.Module, params: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """B_i for every i, one small matmul at a time."""
    if isinstance(layer, LowRankPHMLinear):
        return [params["s"][i] @ params["t"][i] for i in range(layer.n)]
    return [params["B"][i] for i in range(layer.n)]


def reference_forward(layer: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    A = params["A"]
    blocks = reference_blocks(layer, params)
    W = torch.kron(A[0], blocks[0])
    for i in range(1, layer.n):
        W = W + torch.kron(A[i], blocks[i])
    y = x @ W
    return y + params["bias"] if "bias" in params else y


def leaf_copies(layer: nn.Module, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Fresh leaf tensors holding the layer's current values (optionally upcast)."""
    named = {"A": layer.rule_module.weight}
    named.update({name: p for name, p in layer.named_parameters() if not name.startswith("rule.")})
    return {
        name: t.detach().clone().to(dtype or t.dtype).requires_grad_(True) for name, t in named.items()
    }


def make_layer(kind: str, k: int, d: int, n: int, compute: str = "auto", rule: PHMRule | None = None) -> nn.Module:
    """A layer whose rule and bias are O(1), so every term matters in the comparison."""
    if kind == "phm":
        layer = PHMLinear(k, d, n, rule=rule, compute=compute)
    else:
        layer = LowRankPHMLinear(k, d, n, rank=int(kind[-1]), rule=rule, compute=compute)
    with torch.no_grad():
        if rule is None:
            layer.rule_module.weight.normal_()
        layer.bias.normal_()
    return layer


def make_rule(n: int) -> PHMRule:
    rule = PHMRule(n)
    with torch.no_grad():
        rule.weight.normal_()
    return rule


def assert_matches_reference(layer: nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        expected = reference_forward(layer, leaf_copies(layer), x)
        torch.testing.assert_close(layer(x), expected, **FP32_TOL)


# --------------------------------------------------------------------------------------------
# Forward and gradients vs torch.kron
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shared", [False, True], ids=["own-rule", "shared-rule"])
@pytest.mark.parametrize("compute", ["dense", "factored", "auto"])
@pytest.mark.parametrize("kind", LAYER_KINDS)
@pytest.mark.parametrize("k,d,n", SHAPES)
def test_forward_and_gradients_match_kron_reference(kind, compute, shared, k, d, n):
    torch.manual_seed(0)
    rule = make_rule(n) if shared else None
    layer = make_layer(kind, k, d, n, compute, rule)
    x = torch.randn(2, 3, k, requires_grad=True)  # (B, T, k)
    grad_out = torch.randn(2, 3, d)

    params = leaf_copies(layer)
    x_ref = x.detach().clone().requires_grad_(True)
    expected = reference_forward(layer, params, x_ref)
    expected.backward(grad_out)

    y = layer(x)
    y.backward(grad_out)

    torch.testing.assert_close(y, expected, **FP32_TOL)
    torch.testing.assert_close(x.grad, x_ref.grad, **FP32_TOL)
    torch.testing.assert_close(layer.rule_module.weight.grad, params["A"].grad, **FP32_TOL)
    for name, p in layer.named_parameters():
        if not name.startswith("rule."):
            torch.testing.assert_close(p.grad, params[name].grad, **FP32_TOL, msg=f"grad of {name}")


@pytest.mark.parametrize("compute", ["dense", "factored"])
@pytest.mark.parametrize("kind", LAYER_KINDS)
@pytest.mark.parametrize("k,d,n", [(24, 8, 4), (8, 24, 2)])
def test_bf16_matches_fp32_reference_within_tolerance(kind, compute, k, d, n):
    torch.manual_seed(1)
    rule = make_rule(n)
    owner = nn.ModuleDict({"rule": rule, "layer": make_layer(kind, k, d, n, compute, rule)})
    owner.to(torch.bfloat16)  # converts the shared rule (owned here) and the layer together
    layer = owner["layer"]
    x = torch.randn(4, 5, k, dtype=torch.bfloat16, requires_grad=True)
    grad_out = torch.randn(4, 5, d, dtype=torch.bfloat16)

    params = leaf_copies(layer, dtype=torch.float32)  # the same bf16 values, computed in fp32
    x_ref = x.detach().float().requires_grad_(True)
    expected = reference_forward(layer, params, x_ref)
    expected.backward(grad_out.float())

    y = layer(x)
    y.backward(grad_out)
    assert y.dtype == torch.bfloat16 and layer.rule_module.weight.grad.dtype == torch.bfloat16

    def close(actual: torch.Tensor, reference: torch.Tensor, what: str) -> None:
        scale = reference.abs().max().item()
        error = (actual.float() - reference).abs().max().item()
        assert error <= BF16_REL_TOL * scale, f"{what}: max error {error:.3g} > {BF16_REL_TOL} × {scale:.3g}"

    close(y, expected, "output")
    close(x.grad, x_ref.grad, "input grad")
    close(layer.rule_module.weight.grad, params["A"].grad, "rule grad")
    for name, p in layer.named_parameters():
        close(p.grad, params[name].grad, f"grad of {name}")


def test_shared_rule_in_another_dtype_is_cast_to_the_factors_dtype():
    torch.manual_seed(2)
    rule = make_rule(4)  # stays fp32
    layer = LowRankPHMLinear(16, 8, 4, rule=rule).to(torch.bfloat16)  # rule is not a submodule
    assert rule.weight.dtype == torch.float32
    y = layer(torch.randn(3, 16, dtype=torch.bfloat16))
    y.float().sum().backward()
    assert y.dtype == torch.bfloat16
    assert rule.weight.grad is not None and rule.weight.grad.dtype == torch.float32


def test_auto_takes_the_factored_path_where_measured_faster_and_it_is_exact():
    torch.manual_seed(3)
    layer = make_layer("lphm-r1", 768, 24, 4, "auto")
    assert layer.resolved_compute_path() == "factored"
    x = torch.randn(2, 768)
    assert_matches_reference(layer, x)  # under no_grad but training mode: still factored
    assert choose_compute_path("phm", 768, 24, 4) == "dense"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("compute", ["dense", "factored"])
def test_cuda_matches_reference(compute):
    torch.manual_seed(4)
    layer = make_layer("lphm-r3", 24, 8, 4, compute).cuda()
    x = torch.randn(5, 24, device="cuda")
    with torch.no_grad():
        expected = reference_forward(layer, leaf_copies(layer), x)
        torch.testing.assert_close(layer(x), expected, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------------------------
# kron_sum and the dense weight
# --------------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 4), m=st.integers(1, 4), f=st.integers(1, 4), p=st.integers(1, 4), q=st.integers(1, 4)
)
def test_kron_sum_equals_loop_of_torch_kron(n, m, f, p, q):
    A, B = torch.randn(n, m, f), torch.randn(n, p, q)
    expected = sum(torch.kron(A[i], B[i]) for i in range(n))
    torch.testing.assert_close(kron_sum(A, B), expected, **FP32_TOL)


@pytest.mark.parametrize("kind", LAYER_KINDS)
def test_weight_is_the_kron_sum_of_the_factors(kind):
    torch.manual_seed(5)
    layer = make_layer(kind, 12, 8, 4)
    params = leaf_copies(layer)
    blocks = reference_blocks(layer, params)
    expected = sum(torch.kron(params["A"][i], blocks[i]) for i in range(4))
    torch.testing.assert_close(layer.weight(), expected, **FP32_TOL)
    assert layer.weight().shape == (12, 8)


# --------------------------------------------------------------------------------------------
# Eval-mode cache
# --------------------------------------------------------------------------------------------


def count_builds(monkeypatch: pytest.MonkeyPatch, layer: nn.Module) -> list[str]:
    """Record every (re)build of the operands a forward multiplies x with."""
    calls: list[str] = []
    build = layer._build_operands

    def counting_build(path: str):
        calls.append(path)
        return build(path)

    monkeypatch.setattr(layer, "_build_operands", counting_build)
    return calls


@pytest.mark.parametrize("compute", ["auto", "dense", "factored"])
@pytest.mark.parametrize("kind", ["phm", "lphm-r1"])
def test_eval_cache_is_reused_while_parameters_are_unchanged(monkeypatch, kind, compute):
    torch.manual_seed(6)
    layer = make_layer(kind, 24, 8, 4, compute).eval()
    builds = count_builds(monkeypatch, layer)
    x = torch.randn(3, 24)
    with torch.no_grad():
        first = layer(x)
        for _ in range(3):
            torch.testing.assert_close(layer(x), first, rtol=0, atol=0)
        assert layer.weight() is layer.weight()  # the cached tensor itself
    expected_builds = 1 if compute == "factored" else 0  # weight() shares the dense cache entry
    assert len(builds) == 1 + expected_builds, builds
    assert_matches_reference(layer, x)


def test_eval_inference_mode_then_no_grad_reuses_the_cache(monkeypatch):
    torch.manual_seed(7)
    layer = make_layer("lphm-r1", 24, 8, 4, "dense").eval()
    builds = count_builds(monkeypatch, layer)
    x = torch.randn(3, 24)
    with torch.inference_mode():
        layer(x)
    with torch.no_grad():
        layer(x)
    assert len(builds) == 1
    assert_matches_reference(layer, x)


def test_no_cache_in_training_mode_or_while_autograd_records(monkeypatch):
    torch.manual_seed(8)
    layer = make_layer("lphm-r1", 24, 8, 4, "dense")
    builds = count_builds(monkeypatch, layer)
    x = torch.randn(3, 24)
    with torch.no_grad():  # training mode
        layer(x)
        layer(x)
    assert len(builds) == 2
    layer.eval()
    layer(x).sum().backward()  # eval mode, but autograd records: needs a fresh graph
    layer(x).sum().backward()
    assert len(builds) == 4
    assert layer.s.grad is not None and layer.rule.weight.grad is not None


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda params: torch.optim.SGD(params, lr=0.1, foreach=False),
        lambda params: torch.optim.AdamW(params, lr=0.1, foreach=True),
        lambda params: torch.optim.AdamW(params, lr=0.1, fused=True),  # writes without bumping _version
    ],
    ids=["sgd-for-loop", "adamw-foreach", "adamw-fused"],
)
@pytest.mark.parametrize("compute", ["auto", "factored"])
def test_eval_cache_invalidated_by_optimizer_step(monkeypatch, make_optimizer, compute):
    torch.manual_seed(9)
    layer = make_layer("lphm-r3", 24, 8, 4, compute).eval()
    builds = count_builds(monkeypatch, layer)
    x = torch.randn(3, 24)
    with torch.no_grad():
        before = layer(x)
        layer(x)
    assert len(builds) == 1

    optimizer = make_optimizer([layer.s, layer.t])  # the rule is not stepped here
    layer(x).square().sum().backward()  # still in eval mode; autograd on
    optimizer.step()
    builds.clear()
    with torch.no_grad():
        after = layer(x)
    assert len(builds) == 1, "the step changed s and t, so the cache must be rebuilt"
    assert not torch.allclose(after, before)
    assert_matches_reference(layer, x)


@pytest.mark.parametrize("compute", ["auto", "factored"])
def test_eval_cache_invalidated_when_the_shared_rule_changes(monkeypatch, compute):
    torch.manual_seed(10)
    rule = make_rule(4)
    down = make_layer("lphm-r1", 24, 8, 4, compute, rule).eval()
    up = make_layer("lphm-r1", 8, 24, 4, compute, rule).eval()
    down_builds, up_builds = count_builds(monkeypatch, down), count_builds(monkeypatch, up)
    x = torch.randn(3, 24)
    with torch.no_grad():
        before = up(down(x))
        up(down(x))
    assert (len(down_builds), len(up_builds)) == (1, 1)

    optimizer = torch.optim.SGD(rule.parameters(), lr=0.5)  # only the shared rule moves
    up(down(x)).square().sum().backward()
    optimizer.step()
    down_builds.clear()
    up_builds.clear()
    with torch.no_grad():
        after = up(down(x))
    assert (len(down_builds), len(up_builds)) == (1, 1), "the rule changed: both must rebuild"
    assert not torch.allclose(after, before)
    assert_matches_reference(down, x)
    assert_matches_reference(up, torch.randn(3, 8))


def test_eval_cache_invalidated_by_load_state_dict_and_dtype_change():
    torch.manual_seed(11)
    layer = make_layer("phm", 24, 8, 4).eval()
    other = make_layer("phm", 24, 8, 4)
    x = torch.randn(3, 24)
    with torch.no_grad():
        layer(x)
    layer.load_state_dict(other.state_dict())  # copy_ under no_grad bumps the versions
    assert_matches_reference(layer, x)
    layer.to(torch.float64)
    assert_matches_reference(layer, x.double())


def test_invalidate_cache_sees_writes_through_data():
    # `.data` writes bypass the version counter; invalidate_cache() is the documented way out.
    torch.manual_seed(12)
    layer = make_layer("lphm-r1", 24, 8, 4).eval()
    x = torch.randn(3, 24)
    with torch.no_grad():
        layer(x)
    layer.s.data.mul_(2.0)
    layer.invalidate_cache()
    assert_matches_reference(layer, x)


def test_cache_is_not_saved_or_copied():
    layer = make_layer("lphm-r1", 24, 8, 4).eval()
    with torch.no_grad():
        layer(torch.randn(2, 24))
    assert set(layer.state_dict()) == {"rule.weight", "s", "t", "bias"}
    assert copy.deepcopy(layer)._eval_cache == {}


# --------------------------------------------------------------------------------------------
# Shared rule: one owner, gradients add up
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compute", ["dense", "factored"])
def test_shared_rule_grad_is_sum_of_each_layers_grad(compute):
    torch.manual_seed(13)
    n = 4
    rule = make_rule(n)
    down = make_layer("lphm-r1", 24, 8, n, compute, rule)
    up = make_layer("lphm-r1", 8, 24, n, compute, rule)
    x_down, x_up = torch.randn(5, 24), torch.randn(5, 8)

    def loss_down() -> torch.Tensor:
        return down(x_down).tanh().sum()

    def loss_up() -> torch.Tensor:
        return up(x_up).square().mean()

    separate = []
    for loss in (loss_down, loss_up):
        rule.zero_grad(set_to_none=True)
        loss().backward()
        separate.append(rule.weight.grad.clone())
    rule.zero_grad(set_to_none=True)
    (loss_down() + loss_up()).backward()
    torch.testing.assert_close(rule.weight.grad, separate[0] + separate[1], **FP32_TOL)

    # And the independent kron computation agrees on the joint gradient.
    A = rule.weight.detach().clone().requires_grad_(True)
    p_down, p_up = leaf_copies(down), leaf_copies(up)
    p_down["A"] = p_up["A"] = A
    joint = reference_forward(down, p_down, x_down).tanh().sum() + reference_forward(up, p_up, x_up).square().mean()
    joint.backward()
    torch.testing.assert_close(rule.weight.grad, A.grad, **FP32_TOL)


def test_shared_rule_is_owned_once_by_its_creator():
    n = 4
    rule = PHMRule(n)
    down = LowRankPHMLinear(24, 8, n, rule=rule)
    up = LowRankPHMLinear(8, 24, n, rule=rule)
    for layer in (down, up):
        assert layer.rule_module is rule and layer.shares_rule
        assert not any(p is rule.weight for p in layer.parameters())
        assert not any("rule" in key for key in layer.state_dict())
        assert "rule" not in dict(layer.named_children())

    owner = nn.ModuleDict({"rule": rule, "down": down, "up": up})
    names = [name for name, _ in owner.named_parameters()]
    assert names.count("rule.weight") == 1 and sum("rule" in name for name in names) == 1
    # n³ once, r·(k+d) per layer, the biases (d = 8 for down, 24 for up)
    assert sum(p.numel() for p in owner.parameters()) == n**3 + 2 * (24 + 8) + (8 + 24)

    clone = copy.deepcopy(owner)  # sharing survives a deepcopy of the owner
    assert clone["down"].rule_module is clone["rule"] and clone["up"].rule_module is clone["rule"]
    assert clone["rule"] is not rule

    # state_dict round trip through the owner
    fresh_rule = PHMRule(n)
    restored = nn.ModuleDict(
        {
            "rule": fresh_rule,
            "down": LowRankPHMLinear(24, 8, n, rule=fresh_rule),
            "up": LowRankPHMLinear(8, 24, n, rule=fresh_rule),
        }
    )
    restored.load_state_dict(owner.state_dict())
    x = torch.randn(2, 24)
    torch.testing.assert_close(restored["up"](restored["down"](x)), up(down(x)), rtol=0, atol=0)


def test_owned_rule_is_a_registered_parameter():
    layer = PHMLinear(24, 8, 4)
    assert not layer.shares_rule and layer.rule_module is layer.rule
    assert any(p is layer.rule.weight for p in layer.parameters())
    assert "rule.weight" in layer.state_dict()


def test_learn_rule_false_freezes_the_owned_rule():
    layer = LowRankPHMLinear(24, 8, 4, learn_rule=False)
    assert layer.rule.weight.requires_grad is False
    layer(torch.randn(3, 24)).sum().backward()
    assert layer.rule.weight.grad is None and layer.s.grad is not None
    assert PHMRule(4, learn=False).weight.requires_grad is False


def test_learn_rule_false_with_a_shared_rule_is_refused():
    with pytest.raises(ValueError, match="PHMRule\\(n, learn=False\\)"):
        LowRankPHMLinear(24, 8, 4, rule=PHMRule(4), learn_rule=False)


# --------------------------------------------------------------------------------------------
# Parameter counts (paper §4)
# --------------------------------------------------------------------------------------------

sizes = st.integers(1, 4).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(1, 6).map(lambda a: a * n), st.integers(1, 6).map(lambda b: b * n))
)


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@settings(max_examples=30, deadline=None)
@given(nkd=sizes, bias=st.booleans(), shared=st.booleans())
def test_phm_parameter_count(nkd, bias, shared):
    n, k, d = nkd
    layer = PHMLinear(k, d, n, bias=bias, rule=PHMRule(n) if shared else None)
    expected = k * d // n + (d if bias else 0) + (0 if shared else n**3)
    assert count(layer) == expected


@settings(max_examples=30, deadline=None)
@given(nkd=sizes, rank=st.integers(1, 3), bias=st.booleans(), shared=st.booleans())
def test_lphm_parameter_count(nkd, rank, bias, shared):
    n, k, d = nkd
    layer = LowRankPHMLinear(k, d, n, rank=rank, bias=bias, rule=PHMRule(n) if shared else None)
    expected = rank * (k + d) + (d if bias else 0) + (0 if shared else n**3)
    assert count(layer) == expected


# --------------------------------------------------------------------------------------------
# Initialisation
# --------------------------------------------------------------------------------------------


def test_initialisation_follows_the_paper():
    torch.manual_seed(14)
    rule = PHMRule(12)
    assert 0.8e-4 < rule.weight.std().item() < 1.2e-4  # N(0, 1e-4), 1728 samples
    layer = LowRankPHMLinear(768, 24, 4, rank=2)
    unit_gain = LowRankPHMLinear(768, 24, 4, rank=2, factor_init_gain=1.0)
    for factor, gain in ((layer.s, 2 ** 0.5), (layer.t, 2 ** 0.5), (unit_gain.s, 1.0), (unit_gain.t, 1.0)):
        rows, cols = factor.shape[1:]
        # Glorot-uniform per factor matrix, with the authors' gain √2 by default (hypercomplex/inits.py)
        bound = gain * (6.0 / (rows + cols)) ** 0.5
        assert factor.abs().max().item() <= bound
        assert factor.abs().max().item() > 0.9 * bound
    assert torch.count_nonzero(layer.bias) == 0
    normal = LowRankPHMLinear(768, 24, 4, factor_init="normal", factor_init_std=0.05)
    assert 0.04 < normal.s.std().item() < 0.06


# --------------------------------------------------------------------------------------------
# Validation messages
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [PHMLinear, LowRankPHMLinear])
@pytest.mark.parametrize(
    "k,d,n,names,valid",
    [
        (10, 8, 4, "in_features=10", "[1, 2]"),
        (12, 10, 4, "out_features=10", "[1, 2]"),
        (10, 6, 4, "in_features=10 and out_features=6", "[1, 2]"),
        (512, 16, 12, "in_features=512 and out_features=16", "[1, 2, 4, 8, 16]"),
    ],
)
def test_non_dividing_n_names_the_size_and_lists_valid_n(cls, k, d, n, names, valid):
    with pytest.raises(ValueError) as error:
        cls(k, d, n)
    message = str(error.value)
    assert f"n={n} does not divide {names};" in message
    assert message.endswith(valid)


@pytest.mark.parametrize("n", [0, -2])
@pytest.mark.parametrize("cls", [PHMLinear, LowRankPHMLinear])
def test_n_below_one_is_refused(cls, n):
    with pytest.raises(ValueError, match=re.escape(f"n must be a positive integer (n >= 1), got n={n}")):
        cls(8, 8, n)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        PHMRule(n)


@pytest.mark.parametrize("rank", [0, -1])
def test_rank_below_one_is_refused(rank):
    with pytest.raises(ValueError, match=re.escape(f"rank must be a positive integer (rank >= 1), got rank={rank}")):
        LowRankPHMLinear(8, 8, 2, rank=rank)


def test_other_bad_arguments_are_refused_with_the_valid_values():
    with pytest.raises(ValueError, match="shared rule has n=2 but this layer has n=4"):
        PHMLinear(8, 8, 4, rule=PHMRule(2))
    with pytest.raises(ValueError, match=re.escape("['auto', 'dense', 'factored']")):
        PHMLinear(8, 8, 4, compute="fast")
    with pytest.raises(ValueError, match=re.escape("['glorot-uniform', 'normal']")):
        LowRankPHMLinear(8, 8, 4, factor_init="kaiming")
    with pytest.raises(ValueError, match=re.escape("expected input (..., 8), got (2, 6)")):
        PHMLinear(8, 8, 4)(torch.randn(2, 6))


def test_extra_repr_names_the_configuration():
    rule = PHMRule(4)
    text = repr(LowRankPHMLinear(24, 8, 4, rank=2, rule=rule, compute="factored"))
    assert "in_features=24, out_features=8, n=4, rank=2, bias=True, rule=shared, compute=factored" in text
    assert "rule=own" in repr(PHMLinear(24, 8, 4))
    assert "n=4" in repr(rule)


def test_docstring_examples_run():
    modules = [importlib.import_module(f"{phm.__name__}.{m.name}") for m in pkgutil.iter_modules(phm.__path__)]
    results = [doctest.testmod(module, optionflags=doctest.ELLIPSIS) for module in modules]
    assert sum(r.attempted for r in results) > 0 and sum(r.failed for r in results) == 0
