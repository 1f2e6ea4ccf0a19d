"""Peak memory of one training step of a row: static bytes + the step's transient peak.

    measure_peak_memory(candidate, batch, device)
      ├─ static_bytes            parameters, buffers, optimizer state (unique storages)
      └─ transient peak          CUDA: max_memory_allocated − memory_allocated around the step;
                                 CPU: torch.profiler's allocation events, running sum peak

See the package docstring for why these numbers (and not the process RSS).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from .rows import Candidate, synchronize, training_step


def unique_storage_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of the distinct storages behind `tensors` (tied weights and views count once)."""
    seen: dict[tuple[str, int], int] = {}
    for tensor in tensors:
        if tensor.device.type == "meta":
            continue
        storage = tensor.untyped_storage()
        seen[(str(tensor.device), storage.data_ptr())] = storage.nbytes()
    return sum(seen.values())


def static_bytes(candidate: Candidate) -> int:
    """Parameters, buffers and optimizer state: what lives across steps."""
    assert candidate.model is not None and candidate.optimizer is not None
    optimizer_state = [value for state in candidate.optimizer.state.values() for value in state.values()
                       if isinstance(value, torch.Tensor)]
    return unique_storage_bytes([*candidate.model.parameters(), *candidate.model.buffers(), *optimizer_state])


def peak_of_allocation_events(events: Iterable[tuple[int, int]]) -> int:
    """Peak of the running sum of (timestamp, +allocated/−freed bytes) events, in time order.

    >>> peak_of_allocation_events([(3, -4), (1, 4), (2, 8)])
    12
    """
    running = peak = 0
    for _, nbytes in sorted(events):
        running += nbytes
        peak = max(peak, running)
    return peak


def transient_peak_bytes_cpu(step: Callable[[], None]) -> int:
    """Peak bytes allocated (net of frees) during `step`, from the profiler's CPU allocation events.

    Frees of blocks allocated before the profile started are not reported by the profiler, so
    the step must not free memory it did not allocate (gradients are None when it starts).
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        step()
    from torch._C._autograd import DeviceType

    events = [(event.start_ns(), event.nbytes()) for event in profiler.profiler.kineto_results.events()
              if event.name() == "[memory]" and event.device_type() == DeviceType.CPU]
    return peak_of_allocation_events(events)


def transient_peak_bytes_cuda(step: Callable[[], None], device: torch.device) -> int:
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    step()
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


@dataclass
class MemoryMeasurement:
    static_bytes: int
    transient_bytes: int

    @property
    def peak_bytes(self) -> int:
        return self.static_bytes + self.transient_bytes


def measure_peak_memory(candidate: Candidate, batch: dict[str, torch.Tensor], device: torch.device) -> MemoryMeasurement:
    """Static + transient peak bytes of one training step of this row (see the module docstring)."""
    assert candidate.optimizer is not None
    candidate.optimizer.zero_grad(set_to_none=True)
    gc.collect()
    static = static_bytes(candidate)
    step = lambda: training_step(candidate, batch)  # noqa: E731
    if device.type == "cuda":
        transient = transient_peak_bytes_cuda(step, device)
    else:
        transient = transient_peak_bytes_cpu(step)
    return MemoryMeasurement(static, transient)
