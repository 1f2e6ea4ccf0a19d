"""All or nothing: a model snapshot that puts back every module exactly as it was.

Surgery mutates a model in many places (a state module, spliced blocks that change class,
hooks, attached biases, `requires_grad`). `surgery.apply` and `surgery.load_adapter` validate
everything they can before the first change; what can only fail during the change (an
allocation, an interrupt) is undone by restoring this snapshot.

A snapshot records, for every module of the model, its class and its ``__dict__``: the
attribute values and the contents of its containers (parameters, buffers, submodules, hook
dicts). Restoring puts the same objects back *into the same containers*, so hook handles the
user holds keep working, and drops whatever was added. The parameters' values are not copied:
surgery never writes into a base tensor, and the tensors it loads are written last, after the
last step that can fail.

>>> import torch
>>> from torch import nn
>>> model = nn.Sequential(nn.Linear(2, 2))
>>> snapshot = ModelSnapshot(model)
>>> model.add_module("extra", nn.Linear(2, 2)); _ = model[0].weight.requires_grad_(False)
>>> snapshot.restore()
>>> [name for name, _ in model.named_children()], model[0].weight.requires_grad
(['0'], True)
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from torch import nn


class ModelSnapshot:
    """The structure of `model` now; `restore()` makes the model that again."""

    def __init__(self, model: nn.Module):
        self.model = model
        self._modules: list[tuple[nn.Module, type, dict[str, Any], dict[str, list]]] = []
        for module in model.modules():
            attributes = dict(module.__dict__)
            contents = {key: list(value.items()) for key, value in attributes.items() if isinstance(value, dict)}
            self._modules.append((module, type(module), attributes, contents))
        self._requires_grad = [(p, p.requires_grad) for p in model.parameters()]
        # Plain objects a module keeps that surgery changes in place (the routing, the owned tensors'
        # bookkeeping) offer surgery_snapshot / surgery_restore.
        self._objects = [(value, value.surgery_snapshot()) for module in model.modules()
                         for value in list(module.__dict__.values()) if hasattr(value, "surgery_snapshot")]

    def restore(self) -> None:
        for module, cls, attributes, contents in self._modules:
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


@contextmanager
def all_or_nothing(model: nn.Module) -> Iterator[ModelSnapshot]:
    """Run the block; if it raises anything (KeyboardInterrupt included), restore `model` and re-raise."""
    snapshot = ModelSnapshot(model)
    try:
        yield snapshot
    except BaseException:
        snapshot.restore()
        raise
