"""The whole bottleneck adapter ``x + up(act(down(x)))`` as one autograd Function.

Why: an adapter's cost on CPU is memory traffic over the ``(tokens, k)`` activation, not flops
(``k·d`` multiply-adds per token with ``d = k/32``). Written as separate modules the adapter
passes over that activation about ten times per training step. The Function here

* folds the residual into the up-projection (``addmm(x, act, W_up)``) and the up bias into the
  same call (a column of ones appended to the small ``(tokens, d)`` activation),
* folds the residual gradient into the down-projection's input gradient
  (``addmm(grad, grad_pre, W_downᵀ)``) and gets the up bias gradient from the same matmul as
  ``W_up``'s,
* saves only ``x`` and the small pre-activation for backward, and recomputes the activation
  and its derivative on ``(tokens, d)``.

It reads each projection's dense weight (``nn.Linear.weight.T`` or the ``weight()`` of the
low-rank and PHM layers, differentiable), so factors and a shared PHM rule still get their
gradients through the ordinary autograd graph that builds the weight.

>>> import torch
>>> x = torch.randn(6, 8, requires_grad=True)
>>> w_down, b_down = torch.randn(8, 2, requires_grad=True), torch.randn(2, requires_grad=True)
>>> w_up, b_up = torch.randn(2, 8, requires_grad=True), torch.randn(8, requires_grad=True)
>>> act = torch.nn.functional.relu
>>> fused = fused_bottleneck(x, w_down, b_down, w_up, b_up, act)
>>> plain = x + act(x @ w_down + b_down) @ w_up + b_up
>>> torch.allclose(fused, plain, atol=1e-6)
True
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

Activation = Callable[[Tensor], Tensor]


def _with_ones_column(t: Tensor) -> Tensor:
    """``[t, 1]``: (N, d) → (N, d+1), so a bias rides along in the next matmul."""
    return torch.cat([t, t.new_ones(t.shape[0], 1)], dim=1)


class _FusedBottleneck(torch.autograd.Function):
    """y = x + act(x W_d + b_d) W_u + b_u for x (N, k), W_d (k, d), W_u (d, k)."""

    @staticmethod
    def forward(ctx, x: Tensor, w_down: Tensor, b_down: Tensor | None, w_up: Tensor, b_up: Tensor | None,
                activation: Activation) -> Tensor:
        pre = torch.addmm(b_down, x, w_down) if b_down is not None else x @ w_down      # (N, d)
        act = activation(pre)
        if b_up is not None:
            y = torch.addmm(x, _with_ones_column(act), torch.cat([w_up, b_up.unsqueeze(0)]))
        else:
            y = torch.addmm(x, act, w_up)
        ctx.activation = activation
        ctx.save_for_backward(x, pre, w_down, w_up)
        ctx.has_bias = (b_down is not None, b_up is not None)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        x, pre, w_down, w_up = ctx.saved_tensors
        has_b_down, has_b_up = ctx.has_bias
        need_x, need_w_down, need_b_down, need_w_up, need_b_up, _ = ctx.needs_input_grad
        with torch.enable_grad():  # the activation's derivative, on the small (N, d) tensor only
            pre_ = pre.detach().requires_grad_()
            act = ctx.activation(pre_)
        grad_w_up = grad_b_up = None
        if need_w_up or need_b_up:
            rows = _with_ones_column(act.detach()) if has_b_up else act.detach()
            grad_up = rows.T @ grad                                                # (d[+1], k)
            grad_w_up = grad_up[: w_up.shape[0]]
            grad_b_up = grad_up[-1] if has_b_up else None
        grad_x = grad_w_down = grad_b_down = None
        if need_x or need_w_down or need_b_down:
            (grad_pre,) = torch.autograd.grad(act, pre_, grad @ w_up.T)            # (N, d)
            if need_x:
                grad_x = torch.addmm(grad, grad_pre, w_down.T)                     # residual folded in
            if need_w_down:
                grad_w_down = x.T @ grad_pre
            if need_b_down and has_b_down:
                grad_b_down = grad_pre.sum(0)
        return grad_x, grad_w_down, grad_b_down, grad_w_up, grad_b_up, None


def fused_bottleneck(x: Tensor, w_down: Tensor, b_down: Tensor | None, w_up: Tensor, b_up: Tensor | None,
                     activation: Activation) -> Tensor:
    """``x + activation(x @ w_down + b_down) @ w_up + b_up`` in one autograd node.

    ``x`` is ``(..., k)``; ``w_down`` ``(k, d)``, ``w_up`` ``(d, k)`` (the ``x @ W`` convention).
    """
    lead = x.shape[:-1]
    y = _FusedBottleneck.apply(x.reshape(-1, x.shape[-1]), w_down, b_down, w_up, b_up, activation)
    return y.view(*lead, x.shape[-1])


def dense_weight(projection: torch.nn.Module) -> Tensor:
    """The ``(in, out)`` matrix a projection multiplies with (``y = x @ W + b``)."""
    if isinstance(projection, torch.nn.Linear):
        return projection.weight.T
    return projection.weight()
