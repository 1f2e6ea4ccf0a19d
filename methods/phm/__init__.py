"""Parameterized hypercomplex multiplication (PHM) linear layers: PHM and low-rank PHM (Compacter).

Paper convention (Compacter, eqs. 3-5): a layer maps ``x ∈ R^k`` to ``y = x W + b`` with::

    W ∈ R^{k×d},   W = Σ_{i=1..n} A_i ⊗ B_i,   A_i ∈ R^{n×n},   B_i ∈ R^{k/n × d/n}

* :class:`PHMRule` holds the "rule" ``{A_i}`` (``n³`` numbers). Compacter creates ONE rule and
  hands it to every LPHM layer of the model; the rule stays an ordinary parameter of whoever
  created it (never a global), and the layers only keep a reference.
* :class:`PHMLinear` learns every ``B_i`` in full (``k·d/n`` numbers): the PHM-Adapter.
* :class:`LowRankPHMLinear` learns ``B_i = s_i t_i`` with ``s_i ∈ R^{k/n×r}``, ``t_i ∈ R^{r×d/n}``
  (``r·(k+d)`` numbers): the LPHM layer of Compacter / Compacter++.

Index layout (the one ``torch.kron`` uses): row ``a·(k/n)+p`` and column ``b·(d/n)+q`` of ``W``
hold ``Σ_i A_i[a,b]·B_i[p,q]``, so with ``x`` viewed as ``(n, k/n)`` blocks ``x[a,p]``::

    y[b,q] = Σ_i Σ_a Σ_p  x[a,p] · A_i[a,b] · B_i[p,q]

Two compute paths evaluate this sum in different orders (pick with ``compute=``):

* ``"dense"``: build ``W`` (one small batched matmul, :func:`kron_sum`), then ``x @ W + b``.
  This is what other libraries do on every forward.
* ``"factored"``: never form ``W``. For LPHM the rule is folded into the smaller of the two
  factors and ``x`` goes through two skinny matmuls: ``O(n·r·(k+d) + n²·r·min(k,d))`` per token
  instead of ``k·d``. For PHM the sum can not beat ``k·d`` per token (each ``B_i`` already has
  ``k·d/n²`` entries and there are ``n²`` (i, a) pairs to apply them to), so it exists only for
  comparison.
* ``"auto"`` (default): the path measured faster for the situation, see
  :func:`choose_compute_path`.

In eval mode with autograd disabled both layers cache what they need (``W`` for the dense path)
and reuse it until any parameter they read changes (``_version`` counter, storage, dtype,
device; the shared rule included), so inference costs one matmul like ``nn.Linear``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = [
    "COMPUTE_PATHS",
    "FACTOR_INITS",
    "LowRankPHMLinear",
    "PHMLinear",
    "PHMRule",
    "choose_compute_path",
    "kron_sum",
    "valid_phm_n",
]

ComputePath = Literal["auto", "dense", "factored"]
COMPUTE_PATHS: tuple[str, ...] = ("auto", "dense", "factored")
FACTOR_INITS: tuple[str, ...] = ("glorot-uniform", "normal")


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def kron_sum(A: Tensor, B: Tensor) -> Tensor:
    """Sum of Kronecker products ``Σ_i A[i] ⊗ B[i]`` without a Python loop.

    Args:
        A: ``(n, m, f)`` stack of left matrices.
        B: ``(n, p, q)`` stack of right matrices.

    Returns:
        ``(m·p, f·q)`` tensor, equal to ``sum(torch.kron(A[i], B[i]) for i in range(n))``.

    Example:
        >>> A, B = torch.randn(3, 2, 2), torch.randn(3, 4, 5)
        >>> W = kron_sum(A, B)                                   # (8, 10)
        >>> torch.allclose(W, sum(torch.kron(A[i], B[i]) for i in range(3)), atol=1e-6)
        True
    """
    n, m, f = A.shape
    n_b, p, q = B.shape
    if n != n_b:
        raise ValueError(f"kron_sum needs as many A as B matrices, got {n} and {n_b}")
    # One (m·f, n) @ (n, p·q) matmul gives every A[i][a,b]·B[i][p,q] product summed over i;
    # the permute then interleaves the blocks into the kron layout (a, p) × (b, q).
    products = A.reshape(n, m * f).mT @ B.reshape(n, p * q)  # (m·f, p·q)
    return products.view(m, f, p, q).permute(0, 2, 1, 3).reshape(m * p, f * q)


def valid_phm_n(in_features: int, out_features: int) -> list[int]:
    """Every ``n`` a PHM layer of these sizes accepts: the divisors of ``gcd(in, out)``.

    Example:
        >>> valid_phm_n(768, 24)
        [1, 2, 3, 4, 6, 8, 12, 24]
    """
    g = math.gcd(in_features, out_features)
    return [n for n in range(1, g + 1) if g % n == 0]


def _check_layer_sizes(in_features: int, out_features: int, n: int) -> None:
    """Raise a ValueError that names the offending size and lists the valid ``n``."""
    for name, size in (("in_features", in_features), ("out_features", out_features)):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"{name} must be a positive integer, got {name}={size!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer (n >= 1), got n={n!r}")
    not_dividing = [
        f"{name}={size}"
        for name, size in (("in_features", in_features), ("out_features", out_features))
        if size % n != 0
    ]
    if not_dividing:
        raise ValueError(
            f"n={n} does not divide {' and '.join(not_dividing)}; valid n for "
            f"in_features={in_features}, out_features={out_features}: "
            f"{valid_phm_n(in_features, out_features)}"
        )


def _init_factor_(factor: Tensor, scheme: str, std: float) -> None:
    """Initialise a stack ``(n, rows, cols)`` of factor matrices in place.

    Glorot-uniform is applied per matrix (fans = rows, cols), as the paper's code does for the
    LPHM factors; ``nn.init.xavier_uniform_`` on the 3-d stack would count ``n`` as a
    receptive field and give the wrong bound. All matrices share one bound, so one call does it.
    """
    with torch.no_grad():
        if scheme == "glorot-uniform":
            rows, cols = factor.shape[-2:]
            bound = math.sqrt(6.0 / (rows + cols))
            factor.uniform_(-bound, bound)
        elif scheme == "normal":
            factor.normal_(0.0, std)
        else:
            raise ValueError(f"factor_init={scheme!r} is not one of {list(FACTOR_INITS)}")


def choose_compute_path(
    layer: Literal["phm", "lphm"],
    in_features: int,
    out_features: int,
    n: int,
    rank: int | None = None,
) -> Literal["dense", "factored"]:
    """The compute path ``compute="auto"`` uses while autograd is recording (training).

    Measured with ``python -m runners.bench_phm`` and a wider sweep on 2 CPU cores (torch 2.13,
    fp32, 1024 tokens = 8×128, forward+backward, factored time / dense time, medians of
    interleaved samples; ±10 % is noise on that machine):

    * PHM: factored is slower everywhere (1.2-2.9×). It needs at least the ``k·d``
      multiply-adds per token dense needs, in more kernels, while building ``W`` costs only
      ``n·k·d`` once per batch. So PHM always takes the dense path.
    * LPHM, down-projections (``k >= d``): factored wins when its work per token,
      ``n·r·(k+d) + n²·r·min(k,d)``, is at most half of dense's ``k·d``:
      768→24 n=4 0.70×, n=8 0.70-0.79×; 512→16 n=4 0.77-0.98×; 1024→96 n=4 0.39×;
      768→24 r=2 0.72×. Above half it ties or loses: 768→24 n=12 (ratio 0.70) 0.90-1.11×,
      768→24 n=8 r=4 (1.71) 1.3×.
    * LPHM, up-projections (``k < d``): both paths write the same large ``(tokens, d)`` output
      and that write dominates, so the flop savings show only for wide bottlenecks:
      96→1024 n=4 (ratio 0.06) 0.42×, but 24→768 n=4 (0.19) 0.83-0.90×, n=8 (0.43) 1.05-1.66×,
      16→512 n=4 (0.29) 1.17-1.72×. Hence the much lower threshold (0.1).

    On CUDA the same rule is applied unmeasured (no GPU was available when it was written).
    With autograd off in eval mode, ``"auto"`` reads the cached dense ``W`` instead (one matmul
    per call, 0.7-0.95× of rebuilding ``W`` every call at 1024 tokens) and this function is
    not consulted.

    Example:
        >>> choose_compute_path("lphm", 768, 24, n=4, rank=1)
        'factored'
        >>> choose_compute_path("lphm", 24, 768, n=4, rank=1)
        'dense'
        >>> choose_compute_path("phm", 768, 24, n=4)
        'dense'
    """
    if layer == "phm":
        return "dense"
    if layer != "lphm":
        raise ValueError(f"layer must be 'phm' or 'lphm', got {layer!r}")
    r = 1 if rank is None else rank
    k, d = in_features, out_features
    factored_work = n * r * (k + d) + n * n * r * min(k, d)
    threshold = 0.5 if k >= d else 0.1
    return "factored" if factored_work <= threshold * k * d else "dense"


def _fingerprint(tensors: tuple[Tensor, ...]) -> tuple:
    """What changes when a parameter is updated or replaced: used as the eval-cache key.

    ``_version`` counts in-place writes (optimizer steps, ``load_state_dict``, ``.copy_`` under
    ``no_grad``); data_ptr/dtype/device/shape catch ``.to()``, ``.data = ...`` and the like.
    """
    return tuple((t.data_ptr(), t._version, t.dtype, t.device, tuple(t.shape)) for t in tensors)


# --------------------------------------------------------------------------------------------
# The rule {A_i}
# --------------------------------------------------------------------------------------------


class PHMRule(nn.Module):
    """The "slow" rule matrices ``{A_i}`` of a PHM/LPHM layer, one ``(n, n, n)`` parameter.

    ``weight[i]`` is ``A_i ∈ R^{n×n}``. Compacter builds one ``PHMRule`` and passes it to every
    :class:`LowRankPHMLinear` of the model; register it once on a module you own (e.g. the
    model) so it is trained, counted and saved exactly once.

    Args:
        n: number of Kronecker summands (and size of each ``A_i``).
        init_std: standard deviation of the ``N(0, init_std)`` init (paper: 1e-4).
        learn: ``False`` freezes the rule (``requires_grad=False``).

    Example:
        >>> rule = PHMRule(4)
        >>> rule.weight.shape                                    # (n, n, n)
        torch.Size([4, 4, 4])
        >>> PHMRule(4, learn=False).weight.requires_grad
        False
    """

    def __init__(
        self,
        n: int,
        init_std: float = 1e-4,
        learn: bool = True,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer (n >= 1), got n={n!r}")
        self.n = n
        self.init_std = init_std
        self.weight = nn.Parameter(torch.empty(n, n, n, device=device, dtype=dtype), requires_grad=learn)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.normal_(0.0, self.init_std)

    def forward(self) -> Tensor:
        """Return the ``(n, n, n)`` stack of ``A_i``."""
        return self.weight

    def extra_repr(self) -> str:
        return f"n={self.n}, init_std={self.init_std:g}, learn={self.weight.requires_grad}"


# --------------------------------------------------------------------------------------------
# Shared layer machinery: validation, rule ownership, bias, path selection, eval cache
# --------------------------------------------------------------------------------------------


class _HypercomplexLinear(nn.Module):
    """What PHMLinear and LowRankPHMLinear have in common. Subclasses define the factors."""

    _layer_kind: Literal["phm", "lphm"]

    def __init__(
        self,
        in_features: int,
        out_features: int,
        n: int,
        *,
        bias: bool,
        rule: PHMRule | None,
        rule_init_std: float,
        learn_rule: bool,
        compute: ComputePath,
        device: torch.device | str | None,
        dtype: torch.dtype | None,
    ) -> None:
        super().__init__()
        _check_layer_sizes(in_features, out_features, n)
        if compute not in COMPUTE_PATHS:
            raise ValueError(f"compute={compute!r} is not one of {list(COMPUTE_PATHS)}")
        self.in_features = in_features
        self.out_features = out_features
        self.n = n
        self.compute = compute

        if rule is None:
            self.rule = PHMRule(n, rule_init_std, learn_rule, device=device, dtype=dtype)
            object.__setattr__(self, "_shared_rule", None)
        else:
            if not isinstance(rule, PHMRule):
                raise TypeError(f"rule must be a PHMRule or None, got {type(rule).__name__}")
            if rule.n != n:
                raise ValueError(f"the shared rule has n={rule.n} but this layer has n={n}")
            if not learn_rule:
                raise ValueError(
                    "learn_rule=False only applies to a rule the layer owns; to freeze a shared "
                    "rule, create it with PHMRule(n, learn=False)"
                )
            # Deliberately NOT a submodule: the shared rule is owned (registered, counted,
            # saved) by whoever created it, exactly once; each layer only reads it.
            object.__setattr__(self, "_shared_rule", rule)

        if bias:
            self.bias = nn.Parameter(torch.zeros(out_features, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)

        # path name -> (fingerprint of the tensors read, operands built from them); eval only.
        self._eval_cache: dict[str, tuple[tuple, tuple[Tensor, ...]]] = {}

    # ----- rule ------------------------------------------------------------------------------

    @property
    def rule_module(self) -> PHMRule:
        """The :class:`PHMRule` in use: the layer's own, or the shared one."""
        shared = self._shared_rule
        return shared if shared is not None else self.rule

    @property
    def shares_rule(self) -> bool:
        return self._shared_rule is not None

    def _rule_matrices(self, like: Tensor) -> Tensor:
        """``(n, n, n)`` rule, in the factors' dtype (a shared rule may live in another dtype)."""
        A = self.rule_module.weight
        return A if A.dtype == like.dtype else A.to(like.dtype)

    # ----- subclass hooks --------------------------------------------------------------------

    def _factors(self) -> tuple[Tensor, ...]:
        raise NotImplementedError

    def _blocks(self) -> Tensor:
        """``(n, k/n, d/n)`` stack of ``B_i``."""
        raise NotImplementedError

    def _factored_operands(self) -> tuple[Tensor, ...]:
        raise NotImplementedError

    def _apply_factored(self, x2d: Tensor, operands: tuple[Tensor, ...]) -> Tensor:
        raise NotImplementedError

    # ----- building and caching --------------------------------------------------------------

    def _build_operands(self, path: str) -> tuple[Tensor, ...]:
        """What a forward along ``path`` multiplies ``x`` with: ``(W,)`` for dense."""
        if path == "dense":
            blocks = self._blocks()
            return (kron_sum(self._rule_matrices(blocks), blocks),)
        return self._factored_operands()

    def _can_use_eval_cache(self) -> bool:
        # Training mode or a recording autograd needs a fresh graph through the parameters;
        # torch.compile traces its own graph and must not see Python-side caching.
        return not self.training and not torch.is_grad_enabled() and not torch.compiler.is_compiling()

    def _operands(self, path: str) -> tuple[Tensor, ...]:
        if not self._can_use_eval_cache():
            return self._build_operands(path)
        key = _fingerprint((self.rule_module.weight, *self._factors()))
        cached = self._eval_cache.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        operands = self._build_operands(path)
        self._eval_cache[path] = (key, operands)
        return operands

    def invalidate_cache(self) -> None:
        """Drop the eval-mode cache. Only needed after writes the cache can not see, such as
        ``param.data.copy_(...)`` (``.data`` has its own version counter)."""
        self._eval_cache.clear()

    def __getstate__(self) -> dict:
        # Pickling / deepcopy: the cache is derived data, never worth copying.
        state = dict(super().__getstate__())
        state["_eval_cache"] = {}
        return state

    # ----- public ----------------------------------------------------------------------------

    def weight(self) -> Tensor:
        """Dense ``(k, d)`` weight ``W = Σ_i A_i ⊗ B_i`` (``y = x @ W + b``).

        Differentiable while autograd records; in eval mode without autograd it is the cached
        tensor (do not modify it in place).
        """
        return self._operands("dense")[0]

    def resolved_compute_path(self) -> Literal["dense", "factored"]:
        """The path the next ``forward`` takes, resolving ``compute="auto"``."""
        if self.compute != "auto":
            return self.compute  # type: ignore[return-value]
        if self._can_use_eval_cache():
            return "dense"  # one cached matmul per call
        return choose_compute_path(self._layer_kind, self.in_features, self.out_features, self.n, self._rank())

    def _rank(self) -> int | None:
        return None

    def forward(self, x: Tensor) -> Tensor:
        """``(..., k) -> (..., d)``, e.g. ``(B, T, k) -> (B, T, d)``."""
        if x.shape[-1] != self.in_features:
            raise ValueError(f"expected input (..., {self.in_features}), got {tuple(x.shape)}")
        path = self.resolved_compute_path()
        operands = self._operands(path)
        lead = x.shape[:-1]
        x2d = x.reshape(-1, self.in_features)  # (N, k), N = B·T
        if path == "dense":
            (W,) = operands
            y = x2d @ W if self.bias is None else torch.addmm(self.bias, x2d, W)
        else:
            y = self._apply_factored(x2d, operands)
            if self.bias is not None:
                y = y + self.bias
        return y.view(*lead, self.out_features)

    def extra_repr(self) -> str:
        rank = f", rank={self._rank()}" if self._rank() is not None else ""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, n={self.n}{rank}, "
            f"bias={self.bias is not None}, rule={'shared' if self.shares_rule else 'own'}, "
            f"compute={self.compute}"
        )


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
        rule_init_std / learn_rule: init std and trainability of an owned rule.
        factor_init: ``"glorot-uniform"`` (per ``B_i``) or ``"normal"`` (std ``factor_init_std``).
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
        rule_init_std: float = 1e-4,
        learn_rule: bool = True,
        factor_init: str = "glorot-uniform",
        factor_init_std: float = 0.01,
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
        self.B = nn.Parameter(torch.empty(n, in_features // n, out_features // n, device=device, dtype=dtype))
        _init_factor_(self.B, factor_init, factor_init_std)

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
        factor_init: ``"glorot-uniform"`` per ``s_i`` and ``t_i`` (paper) or ``"normal"``
            (std ``factor_init_std``).

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
        rule_init_std: float = 1e-4,
        learn_rule: bool = True,
        factor_init: str = "glorot-uniform",
        factor_init_std: float = 0.01,
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
        self.s = nn.Parameter(torch.empty(n, in_features // n, rank, device=device, dtype=dtype))
        self.t = nn.Parameter(torch.empty(n, rank, out_features // n, device=device, dtype=dtype))
        _init_factor_(self.s, factor_init, factor_init_std)
        _init_factor_(self.t, factor_init, factor_init_std)

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
