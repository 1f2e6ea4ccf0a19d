"""What PHMLinear and LowRankPHMLinear share: validation, rule ownership, bias, path, eval cache.

    forward(x)                       (..., k) → (..., d)
      ├─ resolved_compute_path()     "auto": cached dense W in eval without autograd, else
      │                              choose_compute_path (methods.phm.compute)
      ├─ _operands(path)             built from the parameters, or the eval cache when nothing
      │                              it read has changed (_fingerprint)
      └─ x @ W + b  |  _apply_factored(x, operands) + b      (the subclass's factored math)

Subclasses (methods.phm.layers) define the factors and the factored math.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from surgery.substitute import optimizer_steps

from .compute import COMPUTE_PATHS, ComputePath, choose_compute_path, kron_sum, valid_phm_n
from .rule import PHMRule


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


def _fingerprint(tensors: tuple[Tensor, ...]) -> tuple:
    """What changes when a parameter is updated or replaced: used as the eval-cache key.

    ``_version`` counts in-place writes (optimizer steps, ``load_state_dict``, ``.copy_`` under
    ``no_grad``); data_ptr/dtype/device/shape catch ``.to()``, ``.data = ...`` and the like; the count of
    optimizer steps catches fused optimizers, which write without bumping ``_version``.
    """
    return (optimizer_steps(), *((t.data_ptr(), t._version, t.dtype, t.device, tuple(t.shape)) for t in tensors))


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
