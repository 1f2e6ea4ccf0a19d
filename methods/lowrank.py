"""Low-rank linear layer: W = U Vᵀ of rank r, plus a bias (Adapter-LowRank)."""

from __future__ import annotations

import torch
from torch import nn

from .inits import GLOROT_GAIN, glorot_uniform_bound


class LowRankLinear(nn.Module):
    """y = (x U) Vᵀ + b with U ∈ R^{k×r}, V ∈ R^{d×r}: r(k + d) + d parameters instead of kd + d.

    The product is applied factor by factor, never forming the k×d matrix. It is the matrix product
    for any rank r, as the paper's "product of two low-rank weights" says; the authors'
    LowRankLinear multiplies its factors elementwise, which is that product only for r = 1.

    >>> layer = LowRankLinear(8, 4, rank=2)
    >>> layer(torch.randn(3, 8)).shape
    torch.Size([3, 4])
    >>> sum(p.numel() for p in layer.parameters()) == 2 * (8 + 4) + 4
    True
    """

    def __init__(self, in_features: int, out_features: int, rank: int = 1, bias: bool = True, init: str = "glorot-uniform",
                 init_gain: float = GLOROT_GAIN):
        super().__init__()
        if rank < 1:
            raise ValueError(f"rank must be ≥ 1, got {rank}")
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.left = nn.Parameter(torch.empty(in_features, rank))  # U: (k, r)
        self.right = nn.Parameter(torch.empty(out_features, rank))  # V: (d, r)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.init = init
        self.init_gain = init_gain
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.init == "glorot-uniform":
            # Glorot for the rank-r product: each factor gets the bound of a (fan_in, fan_out) matrix,
            # with gain √2 by default as the authors' LowRankLinear (adapters/low_rank_layer.py calls
            # hypercomplex/inits.py glorot_uniform = xavier_uniform_(gain=√2) on W_left and W_right).
            for factor in (self.left, self.right):
                bound = glorot_uniform_bound(factor.shape[0], factor.shape[1], self.init_gain)
                nn.init.uniform_(factor, -bound, bound)
        elif self.init == "normal":
            nn.init.normal_(self.left, std=0.01)
            nn.init.normal_(self.right, std=0.01)
        else:
            raise ValueError(f"unknown init {self.init!r}; valid: glorot-uniform, normal")
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def weight(self) -> torch.Tensor:
        """The (k, d) matrix U Vᵀ, for inspection and tests."""
        return self.left @ self.right.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., k) → (..., d)
        y = (x @ self.left) @ self.right.T
        return y + self.bias if self.bias is not None else y

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}, bias={self.bias is not None}"
