"""One seed for every generator a run draws from.

>>> import random, torch
>>> set_seed(3); first = (random.random(), torch.rand(2))
>>> set_seed(3); second = (random.random(), torch.rand(2))
>>> first[0] == second[0] and torch.equal(first[1], second[1])
True
"""

from __future__ import annotations

import random

import numpy as np
import torch


def set_seed(seed: int) -> None:
    """Python's, NumPy's and torch's generators (torch's on every device) seeded with `seed`.

    What `transformers.set_seed` does (tests/test_training_core.py compares them), written here
    because importing that one imports transformers' Trainer utilities and, where installed, PEFT
    and bitsandbytes: 17 s at the start of every run on a loaded 2-core machine.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # every device's generator, CUDA's included
