"""The size bound of a plan: what the recipe adds must fit in the memory of the device it goes to.

The plan executes the recipe on a meta-device replica, so every added tensor's shape and dtype
is known before anything is allocated. `check_fits` sums their bytes and compares them with the
free memory of the target device; a recipe that cannot be allocated is refused with a
`RecipeError` naming the option that sets the size (`surgery.options.size_key`), instead of an allocator
error from torch halfway through `apply`.

>>> format_bytes(3 * 2**30)
'3.0 GiB'
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import nn

from .errors import RecipeError
from .naming import is_added


def format_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if count < 1024 or unit == "PiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def added_bytes(model: nn.Module, only: Callable[[str], bool] = lambda name: True) -> tuple[int, int]:
    """(numbers, bytes) of every parameter and buffer surgery added to `model` (any device, meta included);
    `only`: which names count."""
    numbers = size = 0
    seen: set[int] = set()
    tensors = [*model.named_parameters(), *model.named_buffers()]
    for name, tensor in tensors:
        if is_added(name) and only(name) and id(tensor) not in seen:
            seen.add(id(tensor))
            numbers += tensor.numel()
            size += tensor.numel() * tensor.element_size()
    return numbers, size


def free_bytes(device: torch.device) -> int | None:
    """Memory that can still be allocated on `device`, or None where it is unknown (meta, other kinds)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        try:
            with open("/proc/meminfo", encoding="ascii") as file:
                for line in file:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        try:
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    return None


def check_fits(replica: nn.Module, device: torch.device, key: str, value: object,
               only: Callable[[str], bool] = lambda name: True) -> None:
    """Refuse (RecipeError on `key`) when the tensors surgery added to `replica` (those `only` keeps: the
    planned adapter's) exceed `device`'s free memory."""
    numbers, size = added_bytes(replica, only)
    available = free_bytes(device)
    if available is not None and size > available:
        raise RecipeError(
            key, value, valid=f"a size whose added tensors fit in the {format_bytes(available)} free on {device}",
            reason=f"makes the recipe add {numbers:,} numbers ({format_bytes(size)}), more than {device} can allocate")


_ALLOCATION_MESSAGES = ("out of memory", "can't allocate memory", "cannot allocate memory", "failed to allocate",
                        "overflow", "too large", "storage size calculation")


def is_allocation_failure(error: BaseException) -> bool:
    """Whether `error` says memory could not be had (or a size cannot be expressed), rather than a bug.

    >>> is_allocation_failure(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    True
    >>> is_allocation_failure(OverflowError("Python int too large to convert to C long"))
    True
    >>> is_allocation_failure(ValueError("bug")), is_allocation_failure(RuntimeError("shape mismatch"))
    (False, False)
    """
    if isinstance(error, (torch.OutOfMemoryError, MemoryError, OverflowError)):
        return True
    return type(error) is RuntimeError and any(m in str(error).lower() for m in _ALLOCATION_MESSAGES)
