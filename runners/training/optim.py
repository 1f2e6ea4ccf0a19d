"""The paper's optimizer and schedule, and the accelerator a run trains under.

>>> import torch
>>> from torch import nn
>>> scheduler = make_scheduler(make_optimizer([nn.Parameter(torch.zeros(1))], 1.0), warmup_steps=2, total_steps=10)
>>> [round(scheduler.lr_lambdas[0](step), 3) for step in (0, 1, 2, 6, 10)]   # learning-rate factor per step
[0.0, 0.5, 1.0, 0.5, 0.0]
"""

from __future__ import annotations

import functools

import torch
from torch import nn

ADAM_BETAS = (0.9, 0.999)
ADAM_EPSILON = 1e-8
PRECISIONS = ("auto", "no", "bf16", "fp16")


def make_optimizer(parameters: list[nn.Parameter], learning_rate: float) -> torch.optim.AdamW:
    """The paper's AdamW: β 0.9/0.999, ε 1e-8, no weight decay."""
    # foreach: one multi-tensor kernel per update instead of a Python loop over the many small
    # adapter tensors (on CPU torch defaults to the loop; 177 Compacter tensors: 4.0 → 2.1 ms).
    return torch.optim.AdamW(parameters, lr=learning_rate, betas=ADAM_BETAS, eps=ADAM_EPSILON, weight_decay=0.0,
                             foreach=True)


def make_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int,
                   total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """The paper's schedule: the factor rises 0 → 1 over `warmup_steps`, then falls to 0 at `total_steps`.

    The schedule of `transformers.get_linear_schedule_with_warmup` (tests/test_training_core.py
    compares the two), written here because importing transformers' optimization module imports
    its Trainer's utilities, and through them PEFT and bitsandbytes where installed: seconds
    more at every start, and warnings. Its LambdaLR's state_dict (saved in a checkpoint) restores
    the position exactly on resume, checkpoints written with transformers' schedule included.
    """
    return torch.optim.lr_scheduler.LambdaLR(optimizer, functools.partial(linear_warmup_decay, warmup_steps=warmup_steps,
                                                                          total_steps=total_steps))


def linear_warmup_decay(step: int, warmup_steps: int, total_steps: int) -> float:
    """The learning-rate factor at `step`: linear warm-up from 0, then linear decay to 0."""
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def resolve_precision(precision: str, cpu: bool) -> str:
    """`auto`: bf16 on a GPU that supports it, else full precision (T5 overflows in fp16)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    if not cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


def make_accelerator(precision: str = "auto", cpu: bool = False):
    """An `accelerate.Accelerator` for this process (reads torchrun / accelerate launch settings)."""
    from accelerate import Accelerator

    return Accelerator(mixed_precision=resolve_precision(precision, cpu), cpu=cpu)
