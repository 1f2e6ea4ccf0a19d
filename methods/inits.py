"""The initialisations of the paper's runs, each with where it comes from.

The paper (Karimi Mahabadi et al., 2021) states no initialisation; the numbers below are those of
the authors' public code (rabeehk/compacter), which produced the paper's tables. Every one of them is the default of an option, so a recipe can change
it; the bundled recipes repeat them with the same sources in their comments.

=============================  =================================  ==============================================
what                           distribution                       source in rabeehk/compacter (seq2seq/...)
=============================  =================================  ==============================================
LPHM factors sᵢ, tᵢ; PHM Bᵢ;   Glorot-uniform, gain √2, per       hypercomplex/inits.py ``glorot_uniform``:
Adapter-LowRank factors        matrix: U(−b, b),                  ``xavier_uniform_(t, gain=math.sqrt(2))``, used
                               b = √2·√(6 / (fan_in + fan_out))   by hypercomplex/layers.py ``init_W`` and
                                                                  adapters/low_rank_layer.py
shared rule {Aᵢ} (Compacter)   N(0, 1e-4²)                        configs/compacter*.json ``phm_init_range``
                                                                  0.0001, read by the T5 model's shared rule
own rule {Aᵢ} (PHM-Adapter)    N(0, 0.01²)                        hypercomplex/layers.py ``reset_parameters``:
                                                                  ``phm_rule.normal_(std=0.01)``, fixed (the
                                                                  config's ``phm_init_range`` is not read there)
dense adapter weights          N(0, 0.01²), bias 0                third_party/models/t5/modeling_t5.py
                                                                  ``_init_weights``, the ``nn.Linear`` branch
prompt tuning -R               U(−0.5, 0.5)                       modeling_t5.py ``init_prefix_weights``
=============================  =================================  ==============================================

"N(0, s²)" means standard deviation s (the authors' ``normal_(std=s)``).

>>> round(glorot_uniform_bound(768 // 4, 1), 4)                   # an LPHM factor sᵢ of T5-base, n = 4
0.2494
>>> glorot_uniform_bound(768 // 4, 1, gain=1.0) * GLOROT_GAIN == glorot_uniform_bound(768 // 4, 1)
True
"""

from __future__ import annotations

import math

GLOROT_GAIN = math.sqrt(2.0)
SHARED_RULE_STD = 1e-4
OWN_RULE_STD = 0.01
DENSE_WEIGHT_STD = 0.01
PROMPT_RANDOM_RANGE = 0.5


def glorot_uniform_bound(fan_in: int, fan_out: int, gain: float = GLOROT_GAIN) -> float:
    """The half-width b of Glorot-uniform U(−b, b): gain·√(6 / (fan_in + fan_out)), as torch's xavier_uniform_."""
    return gain * math.sqrt(6.0 / (fan_in + fan_out))


def rule_init_std(shared: bool, given: float | None) -> float:
    """The rule's init std: `given`, else the authors' value for a shared or an own rule.

    >>> rule_init_std(shared=True, given=None), rule_init_std(shared=False, given=None), rule_init_std(False, 0.5)
    (0.0001, 0.01, 0.5)
    """
    if given is not None:
        return given
    return SHARED_RULE_STD if shared else OWN_RULE_STD
