"""An adapter's scope: where a method puts what it adds to the model, and whether it is in effect.

Methods never build names or read the routing themselves; the engine hands each call a scope:

* ``scope.container`` — the module that holds the adapter's model-level modules (``model.surgery``
  for the default adapter, ``model.surgery.adapters.<name>`` for another), ``scope.path(local)``
  their qualified names;
* ``scope.attached(base)`` — the name of a tensor attached to an existing module
  (``surgery_bias``, or ``surgery_bias__<name>``) and ``scope.model_attribute(base)`` of a module
  added to the model itself (``surgery_fastfood[__<name>]``);
* ``scope.is_active()`` — hooks of whole-model methods act only while their adapter is in effect;
  ``scope.row_mask(...)`` gives a mixed batch's rows of this adapter;
* ``scope.keep(module.register_forward_hook(...))`` — keeps the hook's handle with the adapter, so
  `surgery.remove` removes it.

>>> from torch import nn
>>> from surgery.routing import Routing
>>> scope = AdapterScope("rte", nn.Module(), "surgery.adapters.rte", Routing(active=("default",)))
>>> scope.attached("surgery_bias"), scope.path("prompt.weight"), scope.is_active()
('surgery_bias__rte', 'surgery.adapters.rte.prompt.weight', False)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from .naming import attached_name
from .routing import Routing



@dataclass(eq=False)
class AdapterScope:
    """One adapter's place in a model (see the module docstring)."""

    name: str
    container: nn.Module
    container_path: str
    routing: Routing
    handles: list[RemovableHandle] = field(default_factory=list)   # of the hooks its method registered

    def path(self, local: str) -> str:
        return f"{self.container_path}.{local}"

    def attached(self, base: str) -> str:
        return attached_name(base, self.name)

    def model_attribute(self, base: str) -> str:
        return attached_name(base, self.name)

    def is_active(self) -> bool:
        return self.routing.is_active(self.name)

    def in_mixed_batch(self) -> bool:
        return self.routing.mixed

    def row_mask(self, rows: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor | None:
        """In a mixed batch: (rows,) 1 for the rows of examples naming this adapter, else 0 (None: no row)."""
        return self.routing.row_mask(self.name, rows, device, dtype)

    def keep(self, handle: RemovableHandle) -> RemovableHandle:
        """Keep the handle of a hook the method registered: removing the adapter removes the hook."""
        self.handles.append(handle)
        return handle
