"""Adapter tensors out of (and into) models wrapped for data-parallel or sharded training.

A spliced model may be wrapped by DistributedDataParallel, FSDP1 (`FullyShardedDataParallel`)
or FSDP2 (`fully_shard`, which swaps each module's class for ``FSDP<Class>`` and turns
parameters into DTensors), or compiled (`torch.compile`). Saving must see the names and full
values of the user's model, not the wrapper's:

* `unwrap` strips DDP, FSDP1's root wrapper and torch.compile (FSDP2 leaves the tree in place);
* `original_class` is the user's class under FSDP2's ``FSDP<Class>``;
* `sharded_state` reads the state dict with the model's own names (no ``_fsdp_wrapped_module.``)
  and global shapes, without gathering anything;
* `gather_full` turns the few tensors an adapter needs into full tensors: DTensor.full_tensor()
  (FSDP2, every rank) or ShardedTensor.gather to rank 0 (FSDP1). Only those tensors are
  gathered, never the frozen base, so saving a T5-11B adapter costs the adapter's size.

Every rank must call the functions that gather (they are collectives), in the same order.

>>> from torch import nn
>>> layer = nn.Linear(2, 2)
>>> unwrap(layer) is layer, is_sharded(layer)
(True, False)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def _fsdp_classes() -> tuple[type, ...]:
    try:
        from torch.distributed.fsdp import FSDPModule, FullyShardedDataParallel
    except ImportError:  # torch built without distributed support
        return ()
    return FullyShardedDataParallel, FSDPModule


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module under DDP / DataParallel, FSDP1's root wrapper and torch.compile."""
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    classes = _fsdp_classes()
    while True:
        if isinstance(model, (DistributedDataParallel, DataParallel)):
            model = model.module
        elif classes and isinstance(model, classes[0]):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def original_class(module: nn.Module) -> type:
    """The module's own class: FSDP2 replaces it with a subclass ``FSDP<Class>`` of (FSDPModule, Class)."""
    classes = _fsdp_classes()
    cls = type(module)
    if len(classes) == 2 and isinstance(module, classes[1]):
        return next(c for c in cls.__mro__[1:] if not issubclass(c, classes[1]))
    return cls


def is_sharded(model: nn.Module) -> bool:
    """True when any part of `model` is sharded by FSDP1 or FSDP2."""
    classes = _fsdp_classes()
    return bool(classes) and any(isinstance(m, classes) for m in model.modules())


def sharded_state(model: nn.Module) -> dict[str, Any]:
    """The state dict under the model's own names, values possibly sharded (DTensor / ShardedTensor).

    No data is gathered: it is a map of names to local shards with global shapes.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=False))


def gather_full(state: dict[str, Any], names: list[str]) -> dict[str, torch.Tensor] | None:
    """Full CPU copies of `state[name]` for `names` (in this order on every rank).

    Returns the tensors on every rank for DTensors and plain tensors, but only on rank 0 when a
    value is an FSDP1 ShardedTensor (gathered to rank 0); the other ranks then get None.
    """
    import torch.distributed as dist
    from torch.distributed._shard.sharded_tensor import ShardedTensor

    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    tensors: dict[str, torch.Tensor] = {}
    only_rank_zero = False
    for name in names:
        value = state[name]
        if hasattr(value, "full_tensor"):  # DTensor (FSDP2)
            value = value.full_tensor()
        elif isinstance(value, ShardedTensor):  # FSDP1's sharded state dict
            out = torch.empty(value.shape, dtype=value.dtype) if rank == 0 else None
            value.gather(dst=0, out=out)
            value, only_rank_zero = out, True
        if value is not None:
            tensors[name] = value.detach().to("cpu").clone().contiguous()
    return None if only_rank_zero and rank != 0 else tensors


def barrier() -> None:
    """Wait for every process, when a process group is running."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def load_full(model: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Copy full tensors (the model's own names) into a wrapped or sharded model; each rank shards its part."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    set_model_state_dict(model, tensors, options=StateDictOptions(full_state_dict=True, strict=False))
