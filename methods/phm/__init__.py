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

The package, by job: ``compute`` (kron_sum, valid_phm_n, choose_compute_path), ``rule``
(PHMRule), ``hypercomplex`` (the layers' shared machinery and eval cache), ``layers``
(PHMLinear, LowRankPHMLinear and their factored math).
"""

from .compute import COMPUTE_PATHS, choose_compute_path, kron_sum, valid_phm_n
from .layers import FACTOR_INITS, LowRankPHMLinear, PHMLinear
from .rule import PHMRule

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
