"""Base tensors an adapter trains (layer norms, the output layer, a task head): every adapter its own values.

The paper trains the layer norms with every parameter-efficient method, so two adapters on one
base would share (and overwrite) those tensors. Instead each adapter owns its values:

* the default adapter trains them in place, so their names stay the base's (today's checkpoints
  and state dicts); the values they had when it was applied (θ₀) are kept aside, untrained;
* another adapter trains its own copy, ``surgery.adapters.<name>.base.<name, '.' → '-'>``,
  initialised from θ₀.

A pre-hook on every module that holds such a tensor puts the value of the adapter in effect into
the module's ``__dict__`` (an instance attribute wins over ``nn.Module.__getattr__``, so the
module's own forward reads it), and a post-hook (always called) takes it out. Where several
active adapters train one tensor, the last one in the active list wins; where none does, θ₀.
In a mixed batch a layer norm's weight becomes one row per example, ``(rows, 1, d)``, which
``weight * hidden_states`` broadcasts over (rows, tokens, d). The hooks run before any method's
(``prepend=True``), so Intrinsic-SAID adds its λ·P·z on top of the value in effect.

>>> import torch, surgery
>>> from transformers import T5Config, T5ForConditionalGeneration
>>> model = T5ForConditionalGeneration(T5Config(d_model=128, d_kv=16, d_ff=128, num_layers=1, num_heads=4, vocab_size=50))
>>> _ = surgery.apply(model, "compacter++")
>>> with torch.no_grad(): _ = model.encoder.final_layer_norm.weight.add_(1.0)    # "trained"
>>> x = torch.ones(1, 1, 128)
>>> round(model.encoder.final_layer_norm(x)[0, 0, 0].item(), 4)   # the default adapter's trained weight, 2
2.0
>>> with surgery.disabled(model):
...     round(model.encoder.final_layer_norm(x)[0, 0, 0].item(), 4)   # the base's θ₀, 1
1.0
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from .naming import BASE_COPIES, DEFAULT_ADAPTER, copy_key
from .routing import Routing


class OwnedTensors:
    """Who trains which base tensor, the default adapter's θ₀, and the other adapters' copies."""

    def __init__(self) -> None:
        self.owners: dict[str, list[str]] = {}              # base name → adapters training it, in order
        self.originals: dict[str, torch.Tensor] = {}        # θ₀ of the tensors the default adapter trains in place
        self.copies: dict[tuple[str, str], nn.Parameter] = {}  # (adapter, base name) → its copy
        self._plan: tuple[int, dict[str, torch.Tensor | None]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_plan": None}

    def __deepcopy__(self, memo: dict) -> OwnedTensors:
        import copy

        fresh = OwnedTensors.__new__(OwnedTensors)
        memo[id(self)] = fresh
        fresh.__dict__.update(copy.deepcopy({**self.__dict__, "_plan": None}, memo))
        return fresh

    def surgery_snapshot(self) -> tuple:
        return {n: list(o) for n, o in self.owners.items()}, dict(self.originals), dict(self.copies)

    def surgery_restore(self, saved: tuple) -> None:
        owners, originals, copies = saved
        self.owners, self.originals, self.copies = {n: list(o) for n, o in owners.items()}, dict(originals), dict(copies)
        self.invalidate()

    def invalidate(self) -> None:
        self._plan = None

    # -- the value of a tensor ------------------------------------------------------------
    def original(self, name: str, parameter: torch.Tensor) -> torch.Tensor:
        """θ₀ of `name`, on the parameter's device and in its dtype (converted once, then kept)."""
        value = self.originals[name]
        if value.device != parameter.device or value.dtype != parameter.dtype:
            value = self.originals[name] = value.to(device=parameter.device, dtype=parameter.dtype)
        return value

    def value_for(self, adapters: tuple[str, ...], name: str, parameter: torch.Tensor) -> torch.Tensor | None:
        """What the module should read for `name` with `adapters` in effect (None: the parameter itself)."""
        owners = self.owners.get(name, ())
        for adapter in reversed(adapters):
            if adapter in owners:
                return None if adapter == DEFAULT_ADAPTER else self.copies[(adapter, name)]
        return self.original(name, parameter) if DEFAULT_ADAPTER in owners else None

    def plan(self, routing: Routing, parameters: dict[str, torch.Tensor]) -> dict[str, torch.Tensor | None]:
        """name → the value in effect, kept until the routing changes or the model moves (`.to()` swaps the
        parameters' storage, and θ₀ must follow)."""
        first = parameters[next(iter(self.owners))]
        key = (routing.version, first.device, first.dtype, first.data_ptr())
        if self._plan is None or self._plan[0] != key:
            adapters = routing.in_effect()
            self._plan = (key, {name: self.value_for(adapters, name, parameters[name]) for name in self.owners})
        return self._plan[1]

    def rows_value(self, routing: Routing, name: str, parameter: torch.Tensor, rows: int) -> torch.Tensor | None:
        """In a mixed batch: one value of `name` per row, (rows, 1, *shape); None where every row reads the parameter."""
        distinct, index = routing.row_index(rows, parameter.device)
        values = [self.value_for((adapter,) if adapter is not None else (), name, parameter) for adapter in distinct]
        if all(value is None for value in values):
            return None
        table = torch.stack([parameter if value is None else value for value in values])
        return table[index].unsqueeze(1)

    # -- bookkeeping at apply / remove ----------------------------------------------------
    def take(self, adapter: str, names: list[str], parameters: dict[str, nn.Parameter], container: nn.Module,
             container_path: str) -> list[str]:
        """Let `adapter` own the base tensors `names`; returns the names it trains them under."""
        trained = []
        if adapter != DEFAULT_ADAPTER and names and BASE_COPIES not in container._modules:
            container.add_module(BASE_COPIES, nn.ParameterDict())
        for name in names:
            parameter = parameters[name]
            if adapter == DEFAULT_ADAPTER:
                self.originals[name] = parameter.detach().clone()
                trained.append(name)
            else:
                start = self.value_for((), name, parameter)
                copy = nn.Parameter((parameter if start is None else start).detach().clone())
                getattr(container, BASE_COPIES)[copy_key(name)] = copy
                self.copies[(adapter, name)] = copy
                trained.append(f"{container_path}.{BASE_COPIES}.{copy_key(name)}")
            self.owners.setdefault(name, []).append(adapter)
        self.invalidate()
        return trained

    def release(self, adapter: str) -> dict[str, torch.Tensor]:
        """Forget what `adapter` owns; returns θ₀ of the base tensors the default trained in place, for the
        caller to write back last (after every step that can fail)."""
        originals = {}
        for name in [n for n, owners in self.owners.items() if adapter in owners]:
            self.owners[name].remove(adapter)
            if adapter == DEFAULT_ADAPTER:
                originals[name] = self.originals.pop(name)
            else:
                self.copies.pop((adapter, name), None)
            if not self.owners[name]:
                del self.owners[name]
        self.invalidate()
        return originals

    def base_values(self) -> dict[str, torch.Tensor]:
        """θ₀ of every base tensor that holds an adapter's trained values instead (for the base fingerprint)."""
        return dict(self.originals)


class SubstituteOwnedTensors:
    """Forward pre-hook: the module reads the value of the adapter in effect for each tensor an adapter owns."""

    surgery_engine = True

    def __init__(self, owned: OwnedTensors, routing: Routing, entries: list[tuple[str, str]],
                 parameters: dict[str, nn.Parameter]):
        self.owned, self.routing, self.entries, self.parameters = owned, routing, entries, parameters

    def __call__(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if self.routing.mixed:
            rows = args[0].shape[0]
            for attribute, name in self.entries:
                value = self.owned.rows_value(self.routing, name, module._parameters[attribute], rows)
                if value is not None:
                    module.__dict__[attribute] = value
            return
        plan = self.owned.plan(self.routing, self.parameters)
        for attribute, name in self.entries:
            value = plan.get(name)
            if value is not None:
                module.__dict__[attribute] = value


class RestoreOwnedTensors:
    """Forward hook (always called): the module's attributes are its parameters again."""

    surgery_engine = True

    def __init__(self, attributes: list[str]):
        self.attributes = attributes

    def __call__(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        for attribute in self.attributes:
            module.__dict__.pop(attribute, None)


def remove_hooks(handles: Iterable[RemovableHandle]) -> None:
    """Remove hooks by their handles (a hook already gone is skipped)."""
    for handle in handles:
        handle.remove()


def install_hooks(model: nn.Module, owned: OwnedTensors, routing: Routing) -> list[RemovableHandle]:
    """Install the substitution hooks for every base tensor an adapter owns; returns their handles.

    The caller keeps them (``model.surgery.engine_hooks``) and removes the previous ones first.
    """
    if not owned.owners:
        return []
    parameters = dict(model.named_parameters())
    name_of = {id(p): name for name, p in parameters.items()}
    handles = []
    for module in model.modules():
        entries = [(attribute, name_of[id(p)]) for attribute, p in module.named_parameters(recurse=False)
                   if name_of.get(id(p)) in owned.owners]
        if entries:
            handles.append(module.register_forward_pre_hook(SubstituteOwnedTensors(owned, routing, entries, parameters),
                                                            prepend=True))
            handles.append(module.register_forward_hook(RestoreOwnedTensors([a for a, _ in entries]), always_call=True))
    return handles


def owners_are_layer_norms(model: nn.Module, names: list[str], layer_norm_classes: tuple[type, ...]) -> list[str]:
    """The names among `names` held by a module that is not a layer norm (a mixed batch cannot vary those per row)."""
    wanted = set(names)
    found = []
    for module_name, module in model.named_modules():
        for attribute, p in module.named_parameters(recurse=False):
            full = f"{module_name}.{attribute}" if module_name else attribute
            if full in wanted and not isinstance(module, layer_norm_classes):
                found.append(full)
    return found
