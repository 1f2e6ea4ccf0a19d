"""The fused adapter Function against the adapter written out op by op.

The reference is built here from leaf copies of the projections' dense weights (nn.Linear's
matrix, ``torch.kron`` sums for LPHM, U Vᵀ for low rank), so it shares no code with the Function.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from transformers.activations import ACT2FN

import methods.adapter as adapter_module
from methods.adapter import BottleneckAdapter
from methods.fused_adapter import fused_bottleneck
from methods.lowrank import LowRankLinear
from methods.phm import LowRankPHMLinear, PHMRule

K, D = 24, 8


def reference_weight(layer: nn.Module) -> torch.Tensor:
    """(in, out) matrix of a projection, from its raw factors."""
    if isinstance(layer, nn.Linear):
        return layer.weight.detach().T.clone()
    if isinstance(layer, LowRankLinear):
        return (layer.left @ layer.right.T).detach().clone()
    A = layer.rule_module.weight.detach()
    return sum(torch.kron(A[i], layer.s[i].detach() @ layer.t[i].detach()) for i in range(layer.n)).clone()


def projections(kind: str) -> tuple[nn.Module, nn.Module, PHMRule | None]:
    torch.manual_seed(0)
    if kind == "dense":
        return nn.Linear(K, D), nn.Linear(D, K), None
    if kind == "dense-no-bias":
        return nn.Linear(K, D, bias=False), nn.Linear(D, K, bias=False), None
    if kind == "lowrank":
        return LowRankLinear(K, D, rank=2), LowRankLinear(D, K, rank=2), None
    rule = PHMRule(4, init_std=0.3)
    return LowRankPHMLinear(K, D, 4, rule=rule), LowRankPHMLinear(D, K, 4, rule=rule), rule


def assert_close_by_arithmetic(got: torch.Tensor, reference: torch.Tensor, dtype: torch.dtype, terms: int) -> None:
    """`got` (computed in `dtype`) against a float64 `reference`, with a tolerance that follows the arithmetic.

    Each entry is a sum of at most `terms` rounded products; rounding errors of a sum grow like √terms
    · eps · the size of its summands, and cancellation makes an entry smaller than its summands — so the
    absolute tolerance scales with the largest entry of the reference, not a fixed 1e-6 (which a fresh
    machine's float32 kernels missed on entries cancelled down to ~1e-3 of the largest).
    """
    eps = torch.finfo(dtype).eps
    scale = reference.abs().max().item()
    factor = 16 * math.sqrt(terms)
    torch.testing.assert_close(got.double(), reference, rtol=factor * eps, atol=factor * eps * max(scale, 1e-30))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("kind", ["dense", "dense-no-bias", "lowrank", "lphm-shared-rule"])
@pytest.mark.parametrize("activation", ["gelu_new", "relu", "silu"])
def test_fused_equals_the_written_out_adapter_forward_and_gradients(kind, activation, dtype):
    down, up, rule = projections(kind)
    with torch.no_grad():  # non-zero biases, so their gradients and placement are exercised
        for layer in (down, up):
            if layer.bias is not None:
                layer.bias.normal_()
    # The same projections in float64 for the reference (one deepcopy keeps the rule shared).
    down64, up64, rule64 = copy.deepcopy((down, up, rule))
    for module in (down, up, rule):
        if module is not None:
            module.to(dtype)
    for module in (down64, up64, rule64):
        if module is not None:
            module.double()
    adapter = BottleneckAdapter(down, up, activation)
    x = torch.randn(3, 5, K, dtype=dtype, requires_grad=True)
    grad_out = torch.randn(3, 5, K, dtype=torch.float64)
    terms = max(3 * 5, K)  # the longest sum: over tokens (weight gradients) or features (projections)

    # Reference in float64: leaf weights, the activation from transformers, every op written out.
    w_down = reference_weight(down64).requires_grad_()
    w_up = reference_weight(up64).requires_grad_()
    b_down = down64.bias.detach().clone().requires_grad_() if down64.bias is not None else None
    b_up = up64.bias.detach().clone().requires_grad_() if up64.bias is not None else None
    x_ref = x.detach().double().requires_grad_()
    pre = x_ref @ w_down + (b_down if b_down is not None else 0)
    expected = x_ref + ACT2FN[activation](pre) @ w_up + (b_up if b_up is not None else 0)
    expected.backward(grad_out)

    out = fused_bottleneck(x, adapter_module.dense_weight(down), down.bias, adapter_module.dense_weight(up),
                           up.bias, adapter.activation)
    out.backward(grad_out.to(dtype))
    assert out.dtype == dtype
    assert_close_by_arithmetic(out, expected.detach(), dtype, terms)
    assert_close_by_arithmetic(x.grad, x_ref.grad, dtype, terms)
    for layer, b_ref in ((down, b_down), (up, b_up)):
        if b_ref is not None:
            assert_close_by_arithmetic(layer.bias.grad, b_ref.grad, dtype, terms)

    # Weight gradients reach the factors through the differentiable weight: compare by the
    # chain rule dL/dfactor = <dL/dW, dW/dfactor>, i.e. recompute with the reference dL/dW.
    for layer, layer64, w_ref in ((down, down64, w_down), (up, up64, w_up)):
        factors = [p for n, p in layer.named_parameters() if n != "bias"]
        factors64 = [p for n, p in layer64.named_parameters() if n != "bias"]
        expected_factor_grads = torch.autograd.grad(adapter_module.dense_weight(layer64), factors64, w_ref.grad)
        for g, e in zip((p.grad for p in factors), expected_factor_grads):
            assert_close_by_arithmetic(g, e, dtype, terms)
    if rule is not None:  # the shared rule collects both layers' gradients
        rule_grad = sum(torch.autograd.grad(adapter_module.dense_weight(layer64), rule64.weight, w_ref.grad)[0]
                        for layer64, w_ref in ((down64, w_down), (up64, w_up)))
        assert_close_by_arithmetic(rule.weight.grad, rule_grad, dtype, terms)


def went_through_fused_function(y: torch.Tensor) -> bool:
    """The output's graph node is the Function's, or the view of it that restores (B, T, k)."""
    nodes = [y.grad_fn] + [fn for fn, _ in y.grad_fn.next_functions]
    return any(type(node).__name__.startswith("_FusedBottleneck") for node in nodes if node is not None)


def test_gelu_new_runs_the_same_function_with_the_fused_kernel():
    adapter = BottleneckAdapter(nn.Linear(K, D), nn.Linear(D, K), "gelu_new")
    x = torch.linspace(-6, 6, 1001)
    by_formula = 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    torch.testing.assert_close(adapter.activation(x), by_formula, rtol=1e-6, atol=1e-6)
    assert "activation=gelu_new" in repr(adapter)


def test_large_inputs_take_the_fused_path_and_match_the_plain_modules(monkeypatch):
    down, up, _ = projections("lphm-shared-rule")
    fused, plain = BottleneckAdapter(down, up, "gelu_new"), BottleneckAdapter(down, up, "gelu_new", fuse=False)
    monkeypatch.setattr(adapter_module, "FUSE_MIN_ELEMENTS", 10 * K)
    x = torch.randn(2, 5, K, requires_grad=True)
    y_fused = fused(x)
    assert went_through_fused_function(y_fused)
    y_plain = plain(x)
    assert not went_through_fused_function(y_plain)
    # Both sides round in float32: the arithmetic's tolerance, twice over.
    assert_close_by_arithmetic(y_fused, y_plain.detach().double(), torch.float32, terms=4 * K)
    small = torch.randn(1, 2, K, requires_grad=True)  # 2·K elements < threshold: plain modules
    assert not went_through_fused_function(fused(small))


def test_fused_path_in_bf16_stays_within_bf16_rounding(monkeypatch):
    down, up, _ = projections("dense")
    reference = BottleneckAdapter(copy.deepcopy(down), copy.deepcopy(up), "gelu_new", fuse=False)
    adapter = BottleneckAdapter(down, up, "gelu_new").to(torch.bfloat16)
    monkeypatch.setattr(adapter_module, "FUSE_MIN_ELEMENTS", 1)
    x = torch.randn(4, 7, K, dtype=torch.bfloat16)
    reference = reference(x.float())
    out = adapter(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), reference, rtol=2e-2, atol=2e-2 * reference.abs().max().item())
