"""One optimizer step, the same for every runner: normalise, share, check, clip, update.

A runner computes summed token losses of its micro-batches and calls `backward_token_loss` on each;
then `finish_step` ends the step. Nothing reaches the parameters unless the global loss and the
gradient norm are finite: a NaN would otherwise poison every parameter, and the last checkpoint
would be the last good state only if no step after it was taken.

>>> import torch
>>> from torch import nn

from .errors import NonFiniteLoss

__all__ = ["NonFiniteLoss", "StepResult", "backward_token_loss", "finish_step"]
>>> from runners.training.optim import make_optimizer, make_scheduler
>>> class OneProcess:                      # what finish_step needs of an accelerate.Accelerator
...     num_processes, scaler = 1, None
...     def backward(self, loss): loss.backward()
...     def clip_grad_norm_(self, parameters, norm): return nn.utils.clip_grad_norm_(parameters, norm)
>>> weight = nn.Parameter(torch.ones(2))
>>> optimizer = make_optimizer([weight], 0.1)
>>> scheduler = make_scheduler(optimizer, warmup_steps=0, total_steps=10)
>>> loss = (weight * torch.tensor([float("nan"), 1.0])).sum()
>>> backward_token_loss(OneProcess(), loss, global_tokens=2)
>>> finish_step(OneProcess(), loss.detach().double(), False, [weight], optimizer, scheduler, 1.0,
...             describe=lambda loss, norm: f"loss {loss}, norm {norm}")
Traceback (most recent call last):
runners.training.errors.NonFiniteLoss: loss nan, norm nan
>>> weight.tolist(), optimizer.state == {}   # no step was taken
([1.0, 1.0], True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from .errors import NonFiniteLoss

__all__ = ["NonFiniteLoss", "StepResult", "backward_token_loss", "finish_step"]


@dataclass(frozen=True)
class StepResult:
    """What one finished step reports (the same on every process)."""

    loss_sum: float          # summed token loss over the global batch
    grad_norm: float         # before clipping
    stop_requested: bool     # some process received SIGINT/SIGTERM during the step


def backward_token_loss(accelerator, token_loss: torch.Tensor, global_tokens: float) -> None:
    """Backward of a micro-batch's summed token loss, as its share of the global batch's mean."""
    # DDP averages gradients over processes: × processes makes it a sum over the global batch.
    accelerator.backward(token_loss * (accelerator.num_processes / global_tokens))


def finish_step(accelerator, loss_sum: torch.Tensor, stop_received: bool, parameters: Iterable[nn.Parameter],
                optimizer: torch.optim.Optimizer, scheduler, max_grad_norm: float,
                describe: Callable[[float, float], str]) -> StepResult:
    """All-reduce the step's loss and stop flag, clip, refuse a non-finite step, update.

    `loss_sum` is this process's summed token loss (a float64 scalar tensor on the device);
    `describe(loss_sum, grad_norm)` words the `NonFiniteLoss` (the runner knows its step and files).
    """
    device = loss_sum.device
    shared = torch.stack([loss_sum.double(), torch.tensor(float(stop_received), device=device, dtype=torch.float64)])
    if accelerator.num_processes > 1:
        shared = accelerator.reduce(shared, reduction="sum")
    global_loss = float(shared[0])
    grad_norm = float(accelerator.clip_grad_norm_(list(parameters), max_grad_norm))
    # With a grad scaler (fp16) an infinite norm is the scaler's to handle: it skips that update.
    if not math.isfinite(global_loss) or (accelerator.scaler is None and not math.isfinite(grad_norm)):
        raise NonFiniteLoss(describe(global_loss, grad_norm))
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return StepResult(global_loss, grad_norm, float(shared[1]) > 0)
