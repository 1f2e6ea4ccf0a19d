"""Prototype: one bottleneck adapter step fused into a custom autograd Function, against the current module.

Run from the repository root::

    python benchmarks/fused_adapter_prototype.py

Why: on T5-small (CPU) the Compacter adapters cost ~5 % of a training step over the floor, and
that cost is memory traffic over the (tokens, k) activation, not flops: a dense nn.Linear adapter
costs the same as an LPHM one. ``x + up(act(down(x)))`` as separate ops makes ~10 passes over
(tokens, k); the fused Function folds the residual into the up-projection's ``addmm`` (forward)
and the input-gradient accumulation into the down-projection's ``addmm`` (backward), and saves
only ``x`` and the small pre-activation. It reads the projections' dense weights (``weight()`` of
the LPHM layer, differentiable), so the factors still get their gradients through ``kron_sum``.

Prints fwd+bwd CPU milliseconds per call (median of interleaved samples) at the encoder's 8 × 128
tokens and the decoder's 8 × 8, and checks the fused gradients against the module's.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from methods.adapter import BottleneckAdapter  # noqa: E402
from methods.phm import LowRankPHMLinear, PHMRule  # noqa: E402

K, D, N = 512, 16, 4  # T5-small hidden size, bottleneck 512 / 32, Compacter's n


def gelu_new(x: Tensor) -> Tensor:
    return 0.5 * x * (1.0 + torch.tanh(0.7978845608028654 * (x + 0.044715 * x.pow(3))))


class FusedBottleneck(torch.autograd.Function):
    """y = x + gelu_new(x @ Wd + bd) @ Wu + bu, with x (N, k), Wd (k, d), Wu (d, k)."""

    @staticmethod
    def forward(ctx, x: Tensor, w_down: Tensor, b_down: Tensor, w_up: Tensor, b_up: Tensor) -> Tensor:
        pre = torch.addmm(b_down, x, w_down)                       # (N, d)
        y = torch.addmm(x, gelu_new(pre), w_up).add_(b_up)         # residual folded into addmm
        ctx.save_for_backward(x, pre, w_down, w_up)
        return y

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, pre, w_down, w_up = ctx.saved_tensors
        with torch.enable_grad():                                  # d gelu(pre) / d pre, on (N, d) only
            pre_ = pre.detach().requires_grad_()
            act = gelu_new(pre_)
        grad_act = grad @ w_up.T                                   # (N, d)
        (grad_pre,) = torch.autograd.grad(act, pre_, grad_act)
        grad_x = torch.addmm(grad, grad_pre, w_down.T)             # residual gradient accumulated in addmm
        return grad_x, x.T @ grad_pre, grad_pre.sum(0), act.detach().T @ grad, grad.sum(0)


class FusedAdapter(nn.Module):
    def __init__(self, adapter: BottleneckAdapter):
        super().__init__()
        self.adapter = adapter

    def forward(self, x: Tensor) -> Tensor:
        a = self.adapter
        y = FusedBottleneck.apply(x.reshape(-1, K), a.down.weight(), a.down.bias, a.up.weight(), a.up.bias)
        return y.view_as(x)


def fwd_bwd_ms(module: nn.Module, x: Tensor, grad: Tensor, calls: int = 5) -> float:
    start = time.process_time()
    for _ in range(calls):
        module(x).backward(grad)
        x.grad = None
        module.zero_grad(set_to_none=True)
    return (time.process_time() - start) / calls * 1e3


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rule = PHMRule(N)
    adapter = BottleneckAdapter(LowRankPHMLinear(K, D, N, rule=rule), LowRankPHMLinear(D, K, N, rule=rule), "gelu_new")
    fused = FusedAdapter(adapter)
    x = torch.randn(8, 128, K, requires_grad=True)
    grad = torch.randn(8, 128, K)
    grads = []
    for module in (adapter, fused):
        module(x).backward(grad)
        grads.append([x.grad.clone(), rule.weight.grad.clone(), adapter.down.s.grad.clone(), adapter.up.t.grad.clone()])
        x.grad = None
        adapter.zero_grad(set_to_none=True)
        rule.zero_grad(set_to_none=True)
    worst = max((a - b).abs().max().item() / (a.abs().max().item() + 1e-12) for a, b in zip(*grads))
    print(f"fused vs module gradients: largest relative difference {worst:.2e}")
    for tokens in ((8, 128), (8, 8)):
        x = torch.randn(*tokens, K, requires_grad=True)
        grad = torch.randn(*tokens, K)
        samples: dict[str, list[float]] = {"module (current)": [], "fused Function": []}
        for _ in range(25):
            samples["module (current)"].append(fwd_bwd_ms(adapter, x, grad))
            samples["fused Function"].append(fwd_bwd_ms(fused, x, grad))
            rule.zero_grad(set_to_none=True)
        print(f"tokens {tokens[0]}×{tokens[1]}: " + ", ".join(f"{name} {statistics.median(v):.3f} ms" for name, v in samples.items()))


if __name__ == "__main__":
    main()
