"""All or nothing: a model snapshot that puts back every module exactly as it was.

Surgery mutates a model in many places (a state module, spliced blocks that change class,
hooks, attached biases, `requires_grad`). `surgery.apply` and `surgery.load_adapter` validate
everything they can before the first change; what can only fail during the change (an
allocation, an interrupt) is undone by restoring this snapshot.

A snapshot records, for every module of the model, its class and its ``__dict__``: the
attribute values and the contents of its containers (parameters, buffers, submodules, hook
dicts). Restoring puts the same objects back *into the same containers*, so hook handles the
user holds keep working, and drops whatever was added. The parameters' values are not copied up
front; the steps that write into the model's tensors (loading an adapter's values, giving a base
tensor θ₀ back, folding) run inside `snapshot.recording_writes()`, which keeps a copy of each
tensor of the model just before its first in-place write, so restoring puts its values back too.

>>> import torch
>>> from torch import nn
>>> model = nn.Sequential(nn.Linear(2, 2))
>>> snapshot = ModelSnapshot(model)
>>> model.add_module("extra", nn.Linear(2, 2)); _ = model[0].weight.requires_grad_(False)
>>> snapshot.restore()
>>> [name for name, _ in model.named_children()], model[0].weight.requires_grad
(['0'], True)
>>> before = model[0].weight.detach().clone()
>>> try:
...     with all_or_nothing(model) as snapshot, snapshot.recording_writes(), torch.no_grad():
...         _ = model[0].weight.fill_(7.0)
...         raise KeyboardInterrupt
... except KeyboardInterrupt:
...     pass
>>> torch.equal(model[0].weight, before)
True
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn
from torch.overrides import TorchFunctionMode


class ModelSnapshot:
    """The structure of `model` now; `restore()` makes the model that again."""

    def __init__(self, model: nn.Module):
        self.model = model
        self._saved_modules: list[tuple[nn.Module, type, dict[str, Any], dict[str, list]]] = []
        for module in model.modules():
            attributes = dict(module.__dict__)
            contents = {key: list(value.items()) for key, value in attributes.items() if isinstance(value, dict)}
            self._saved_modules.append((module, type(module), attributes, contents))
        self._requires_grad = [(p, p.requires_grad) for p in model.parameters()]
        # Plain objects a module keeps that surgery changes in place (the routing, the owned tensors'
        # bookkeeping) offer surgery_snapshot / surgery_restore.
        self._objects = [(value, value.surgery_snapshot()) for module in model.modules()
                         for value in list(module.__dict__.values()) if hasattr(value, "surgery_snapshot")]

        self._tensors = {_storage_key(t): t for t in _model_tensors(model)}
        self._written: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    @contextmanager
    def recording_writes(self) -> Iterator[None]:
        """Within the block, each of the model's tensors is copied just before its first in-place write."""
        with _WriteRecorder(self):
            yield

    def keep_value(self, tensor: torch.Tensor) -> None:
        """Copy `tensor` (or the model tensor whose storage it writes into) unless already kept."""
        key = _storage_key(tensor)
        owner = self._tensors.get(key)
        if owner is not None and key not in self._written:
            with torch.no_grad():
                self._written[key] = (owner, owner.detach().clone())

    def restore(self) -> None:
        for module, cls, attributes, contents in self._saved_modules:
            if type(module) is not cls:
                module.__class__ = cls
            current = module.__dict__
            for key in [k for k in current if k not in attributes]:
                del current[key]
            for key, value in attributes.items():
                current[key] = value
            for key, items in contents.items():
                container = attributes[key]
                container.clear()
                container.update(items)
        for parameter, requires_grad in self._requires_grad:
            parameter.requires_grad_(requires_grad)
        for value, saved in self._objects:
            value.surgery_restore(saved)
        with torch.no_grad():
            for tensor, value in self._written.values():
                tensor.copy_(value)
        self._written.clear()


def _model_tensors(model: nn.Module) -> list[torch.Tensor]:
    """Every tensor of the model a write could change: its parameters and buffers."""
    return [t for t in (*model.parameters(), *model.buffers()) if not t.is_meta]


def _storage_key(tensor: torch.Tensor) -> int:
    """Which memory a tensor lives in: a view and the tensor it views share it."""
    return tensor.untyped_storage().data_ptr() if not tensor.is_meta else id(tensor)


# In-place by name, but they change flags, not values.
_NOT_WRITES = frozenset({"requires_grad_", "share_memory_", "rename_", "detach_", "retain_grad"})


def _is_in_place(func: object, kwargs: dict) -> bool:
    name = getattr(func, "__name__", "")
    in_place = name.endswith("_") and not name.startswith("_") and name not in _NOT_WRITES
    return in_place or name in ("__setitem__", "__iadd__", "__isub__", "__imul__", "__itruediv__") or "out" in kwargs


class _WriteRecorder(TorchFunctionMode):
    """Sees every torch call; before one writes into a tensor of the model, keeps that tensor's value."""

    def __init__(self, snapshot: ModelSnapshot):
        super().__init__()
        self.snapshot = snapshot

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _is_in_place(func, kwargs):
            target = kwargs["out"] if "out" in kwargs else (args[0] if args else None)
            for tensor in target if isinstance(target, (tuple, list)) else (target,):
                if isinstance(tensor, torch.Tensor):
                    self.snapshot.keep_value(tensor)
        return func(*args, **kwargs)


@contextmanager
def all_or_nothing(model: nn.Module) -> Iterator[ModelSnapshot]:
    """Run the block; if it raises anything (KeyboardInterrupt included), restore `model` and re-raise."""
    snapshot = ModelSnapshot(model)
    try:
        yield snapshot
    except BaseException:
        snapshot.restore()
        raise
