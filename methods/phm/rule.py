"""The rule ``{A_i}`` of PHM and LPHM layers: one ``(n, n, n)`` parameter, shareable."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class PHMRule(nn.Module):
    """The "slow" rule matrices ``{A_i}`` of a PHM/LPHM layer, one ``(n, n, n)`` parameter.

    ``weight[i]`` is ``A_i ∈ R^{n×n}``. Compacter builds one ``PHMRule`` and passes it to every
    :class:`LowRankPHMLinear` of the model; register it once on a module you own (e.g. the
    model) so it is trained, counted and saved exactly once.

    Args:
        n: number of Kronecker summands (and size of each ``A_i``).
        init_std: standard deviation of the ``N(0, init_std²)`` init (1e-4: the authors' shared Compacter
            rule; a layer that owns its rule draws it with 0.01, see ``methods.inits``).
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
