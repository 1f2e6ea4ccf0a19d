"""The two PHM layers: :class:`PHMLinear` (full ``B_i``) and :class:`LowRankPHMLinear` (Compacter).

Each defines its factors, how they make the blocks ``B_i`` (dense path) and its factored math;
everything else is :class:`~methods.phm.hypercomplex._HypercomplexLinear`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..inits import GLOROT_GAIN, OWN_RULE_STD, glorot_uniform_bound
from .compute import ComputePath
from .hypercomplex import _HypercomplexLinear
from .rule import PHMRule

FACTOR_INITS: tuple[str, ...] = ("glorot-uniform", "normal")


def _init_factor_(factor: Tensor, scheme: str, std: float, gain: float = GLOROT_GAIN) -> None:
    """Initialise a stack ``(n, rows, cols)`` of factor matrices in place.

    Glorot-uniform is applied per matrix (fans = rows, cols) with ``gain`` (√2 by default: the
    authors' ``glorot_uniform`` in seq2seq/hypercomplex/inits.py is ``xavier_uniform_`` with gain
    √2, called per ``W[i]``); ``nn.init.xavier_uniform_`` on the 3-d stack would count ``n`` as a
    receptive field and give the wrong bound. All matrices share one bound, so one call does it.
    """
    with torch.no_grad():
        if scheme == "glorot-uniform":
            rows, cols = factor.shape[-2:]
            bound = glorot_uniform_bound(rows, cols, gain)
            factor.uniform_(-bound, bound)
        elif scheme == "normal":
            factor.normal_(0.0, std)
        else:
            raise ValueError(f"factor_init={scheme!r} is not one of {list(FACTOR_INITS)}")


# --------------------------------------------------------------------------------------------
# PHM: full B_i
# --------------------------------------------------------------------------------------------


class PHMLinear(_HypercomplexLinear):
    """PHM layer ``y = x W + b``, ``W = Σ_i A_i ⊗ B_i`` with full ``B_i`` (PHM-Adapter).

    Parameters: ``B`` ``(n, k/n, d/n)``, ``bias`` ``(d,)`` (zeros), and the rule ``(n, n, n)``
    unless a shared :class:`PHMRule` is passed: ``n³ + k·d/n + d`` numbers when it owns its rule.

    Args:
        in_features: ``k``. out_features: ``d``. ``n`` must divide both.
        bias: learn a bias (zero-initialised).
        rule: a shared :class:`PHMRule` (kept by reference, not registered), or ``None`` to own one.
        rule_init_std / learn_rule: init std and trainability of an owned rule (default 0.01, the
            authors' PHM layer: ``methods.inits``).
        factor_init: ``"glorot-uniform"`` (per ``B_i``, gain ``factor_init_gain``, default √2 as the
            authors' layers) or ``"normal"`` (std ``factor_init_std``).
        compute: ``"auto"``, ``"dense"`` or ``"factored"`` (see the module docstring).

    Example:
        >>> layer = PHMLinear(in_features=16, out_features=8, n=4)
        >>> x = torch.randn(2, 5, 16)                            # (B, T, k)
        >>> layer(x).shape                                       # (B, T, d)
        torch.Size([2, 5, 8])
        >>> layer.weight().shape                                 # (k, d)
        torch.Size([16, 8])
        >>> sum(p.numel() for p in layer.parameters())           # n³ + k·d/n + d
        104
    """

    _layer_kind = "phm"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        n: int,
        bias: bool = True,
        rule: PHMRule | None = None,
        rule_init_std: float = OWN_RULE_STD,
        learn_rule: bool = True,
        factor_init: str = "glorot-uniform",
        factor_init_std: float = 0.01,
        factor_init_gain: float = GLOROT_GAIN,
        compute: ComputePath = "auto",
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if factor_init not in FACTOR_INITS:
            raise ValueError(f"factor_init={factor_init!r} is not one of {list(FACTOR_INITS)}")
        super().__init__(
            in_features, out_features, n, bias=bias, rule=rule, rule_init_std=rule_init_std,
            learn_rule=learn_rule, compute=compute, device=device, dtype=dtype,
        )
        self.factor_init = factor_init
        self.factor_init_std = factor_init_std
        self.factor_init_gain = factor_init_gain
        self.B = nn.Parameter(torch.empty(n, in_features // n, out_features // n, device=device, dtype=dtype))
        _init_factor_(self.B, factor_init, factor_init_std, factor_init_gain)

    def _factors(self) -> tuple[Tensor, ...]:
        return (self.B,)

    def _blocks(self) -> Tensor:
        return self.B

    def _factored_operands(self) -> tuple[Tensor, ...]:
        return (self._rule_matrices(self.B), self.B)

    def _apply_factored(self, x2d: Tensor, operands: tuple[Tensor, ...]) -> Tensor:
        A, B = operands  # (n, n, n), (n, k/n, d/n)
        n, k, d = self.n, self.in_features, self.out_features
        N = x2d.shape[0]
        if k >= d:
            # Apply B first while the result (N, n_a, n_i, d/n) is small (down-projection).
            B_cols = B.permute(1, 0, 2).reshape(k // n, n * (d // n))      # [p, (i, q)]
            v = (x2d.reshape(N * n, k // n) @ B_cols).view(N, n * n, d // n)  # [N, (a, i), q]
            A_rows = A.permute(2, 1, 0).reshape(n, n * n)                  # [b, (a, i)]
            return torch.matmul(A_rows, v).view(N, d)                        # [N, b, q]
        # Up-projection: mix the n input blocks with A first while x (k small) is cheap to copy.
        A_rows = A.permute(2, 0, 1).reshape(n * n, n)                      # [(b, i), a]
        u = torch.matmul(A_rows, x2d.view(N, n, k // n))                    # [N, (b, i), p]
        y = u.view(N * n, n * (k // n)) @ B.reshape(n * (k // n), d // n)    # [(N, b), q]
        return y.view(N, d)


# --------------------------------------------------------------------------------------------
# LPHM: B_i = s_i t_i (Compacter)
# --------------------------------------------------------------------------------------------


class LowRankPHMLinear(_HypercomplexLinear):
    """Low-rank PHM (LPHM) layer of Compacter: ``W = Σ_i A_i ⊗ (s_i t_i)``.

    Parameters: ``s`` ``(n, k/n, r)``, ``t`` ``(n, r, d/n)``, ``bias`` ``(d,)`` (zeros), and the
    rule ``(n, n, n)`` unless shared: ``n³ + r·(k+d) + d`` numbers when it owns its rule,
    ``r·(k+d) + d`` with a shared rule (Compacter's count).

    Args:
        in_features: ``k``. out_features: ``d``. ``n`` must divide both.
        rank: ``r >= 1`` (paper: 1).
        bias, rule, rule_init_std, learn_rule, compute: as :class:`PHMLinear`.
        factor_init: ``"glorot-uniform"`` per ``s_i`` and ``t_i`` with gain ``factor_init_gain``
            (paper; √2 as in the authors' code, ``methods.inits``) or ``"normal"`` (std ``factor_init_std``).

    Example:
        >>> rule = PHMRule(4)                                    # owned by the caller, shared
        >>> down = LowRankPHMLinear(768, 24, n=4, rule=rule)
        >>> up = LowRankPHMLinear(24, 768, n=4, rule=rule)
        >>> x = torch.randn(2, 7, 768)                           # (B, T, k)
        >>> up(torch.nn.functional.gelu(down(x))).shape          # (B, T, k)
        torch.Size([2, 7, 768])
        >>> sum(p.numel() for p in down.parameters())            # r·(k+d) + d
        816
    """

    _layer_kind = "lphm"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        n: int,
        rank: int = 1,
        bias: bool = True,
        rule: PHMRule | None = None,
        rule_init_std: float = OWN_RULE_STD,
        learn_rule: bool = True,
        factor_init: str = "glorot-uniform",
        factor_init_std: float = 0.01,
        factor_init_gain: float = GLOROT_GAIN,
        compute: ComputePath = "auto",
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ValueError(f"rank must be a positive integer (rank >= 1), got rank={rank!r}")
        if factor_init not in FACTOR_INITS:
            raise ValueError(f"factor_init={factor_init!r} is not one of {list(FACTOR_INITS)}")
        super().__init__(
            in_features, out_features, n, bias=bias, rule=rule, rule_init_std=rule_init_std,
            learn_rule=learn_rule, compute=compute, device=device, dtype=dtype,
        )
        self.rank = rank
        self.factor_init = factor_init
        self.factor_init_std = factor_init_std
        self.factor_init_gain = factor_init_gain
        self.s = nn.Parameter(torch.empty(n, in_features // n, rank, device=device, dtype=dtype))
        self.t = nn.Parameter(torch.empty(n, rank, out_features // n, device=device, dtype=dtype))
        _init_factor_(self.s, factor_init, factor_init_std, factor_init_gain)
        _init_factor_(self.t, factor_init, factor_init_std, factor_init_gain)

    def _rank(self) -> int | None:
        return self.rank

    def _factors(self) -> tuple[Tensor, ...]:
        return (self.s, self.t)

    def _blocks(self) -> Tensor:
        return torch.bmm(self.s, self.t)  # (n, k/n, d/n)

    def _fold_rule_into_output_side(self) -> bool:
        # Folding A into t costs n·r·k + n²·r·d per token, into s n²·r·k + n·r·d: fold into
        # the smaller side (t for a down-projection k >= d, s for an up-projection).
        return self.in_features >= self.out_features

    def _factored_operands(self) -> tuple[Tensor, ...]:
        n, r, k, d = self.n, self.rank, self.in_features, self.out_features
        A = self._rule_matrices(self.s)
        if self._fold_rule_into_output_side():
            S = self.s.permute(1, 0, 2).reshape(k // n, n * r)                       # [p, (i, r)]
            M = torch.einsum("iab,irq->airbq", A, self.t).reshape(n * n * r, d)      # [(a,i,r), (b,q)]
            return (S, M)
        P = torch.einsum("iab,ipr->apbir", A, self.s).reshape(k, n * n * r)          # [(a,p), (b,i,r)]
        T = self.t.reshape(n * r, d // n)                                            # [(i, r), q]
        return (P, T)

    def _apply_factored(self, x2d: Tensor, operands: tuple[Tensor, ...]) -> Tensor:
        n, r, k, d = self.n, self.rank, self.in_features, self.out_features
        N = x2d.shape[0]
        if self._fold_rule_into_output_side():
            S, M = operands
            g = (x2d.reshape(N * n, k // n) @ S).view(N, n * n * r)  # x[a,p]·s_i[p,r] -> [N, (a,i,r)]
            return g @ M                                             # [N, (b, q)]
        P, T = operands
        u = (x2d @ P).view(N * n, n * r)                             # [(N, b), (i, r)]
        return (u @ T).view(N, d)                                    # [N, (b, q)]
