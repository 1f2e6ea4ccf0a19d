"""The arithmetic PHM layers share: Kronecker sums, the sizes they accept, the compute path.

* :func:`kron_sum` builds ``W = Σ_i A_i ⊗ B_i`` in one matmul (the dense path);
* :func:`valid_phm_n` lists the ``n`` that divide both sizes of a layer;
* :func:`choose_compute_path` picks dense or factored for ``compute="auto"`` while training, from
  the measurements quoted in its docstring.
"""

from __future__ import annotations

import math
from typing import Literal

import torch  # noqa: F401  (the doctest examples use it)
from torch import Tensor

ComputePath = Literal["auto", "dense", "factored"]
COMPUTE_PATHS: tuple[str, ...] = ("auto", "dense", "factored")


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


def choose_compute_path(
    layer: Literal["phm", "lphm"],
    in_features: int,
    out_features: int,
    n: int,
    rank: int | None = None,
) -> Literal["dense", "factored"]:
    """The compute path ``compute="auto"`` uses while autograd is recording (training).

    Measured with ``python benchmarks/bench_phm.py`` and a wider sweep on 2 CPU cores (torch 2.13,
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
