"""Base tensors an adapter trains (layer norms, the output layer, a task head): every adapter its own copy.

The paper trains the layer norms with every parameter-efficient method, so two adapters on one
base would share (and overwrite) those tensors. Instead every adapter, the first one included,
trains its own copy, ``surgery.adapters.<name>.base.<base name, '.' → '-'>``, initialised from the
base tensor, which itself is never written: switching adapters off or removing them gives back the
base exactly, and ``save_pretrained`` writes both.

A substitution (`surgery.substitute`) on every module that holds such a tensor makes the module
read the copy of the adapter in effect for one call; where several active adapters train one
tensor, the last one in the active list wins; where none does, the base tensor. In a mixed batch
a layer norm's weight becomes one row per example, ``(rows, 1, d)``, which ``weight *
hidden_states`` broadcasts over (rows, tokens, d); ``nn.LayerNorm`` (BART, BERT, GPT-2), whose
``F.layer_norm`` takes no such weight, runs with the base tensors and a forward hook redoes it with
each row's weight and bias. The copies are found by name at each call (no
Parameter is held), and these substitutions run before any method's, so Intrinsic-SAID adds its
λ·P·z on top of the value in effect.

>>> import torch, surgery
>>> from transformers import T5Config, T5ForConditionalGeneration
>>> model = T5ForConditionalGeneration(T5Config(d_model=128, d_kv=16, d_ff=128, num_layers=1, num_heads=4, vocab_size=50))
>>> _ = surgery.apply(model, "compacter++")
>>> copy = model.surgery.adapters.default.base["encoder-final_layer_norm-weight"]
>>> with torch.no_grad(): _ = copy.add_(1.0)    # "trained"
>>> x = torch.ones(1, 1, 128)
>>> round(model.encoder.final_layer_norm(x)[0, 0, 0].item(), 4)   # the adapter's copy, 2
2.0
>>> with surgery.disabled(model):
...     round(model.encoder.final_layer_norm(x)[0, 0, 0].item(), 4)   # the base tensor, 1
1.0
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from .naming import ADAPTERS, BASE_COPIES, copy_key
from .substitute import substitute


def copies_of(state: nn.Module, adapter: str) -> nn.ParameterDict | None:
    """`adapter`'s copies of base tensors (``model.surgery.adapters.<adapter>.base``), if it has any."""
    adapters = getattr(state, ADAPTERS, None)
    if adapters is None or adapter not in adapters:
        return None
    return getattr(adapters[adapter], BASE_COPIES, None)


def trained_base_names(state: nn.Module) -> dict[str, list[str]]:
    """base tensor name → the adapters that train a copy of it, in the order they were applied."""
    owners: dict[str, list[str]] = {}
    for adapter, container in getattr(state, ADAPTERS, {}).items():
        for key in getattr(container, BASE_COPIES, {}):
            owners.setdefault(key.replace("-", "."), []).append(adapter)
    return owners


def take_copies(adapter_container: nn.Module, container_path: str, names: list[str],
                parameters: dict[str, nn.Parameter]) -> list[str]:
    """Give the adapter whose model-level modules live in `adapter_container` a copy of each base tensor
    in `names`, initialised from it; returns the copies' qualified names (`container_path` + …)."""
    if not names:
        return []
    if getattr(adapter_container, BASE_COPIES, None) is None:
        adapter_container.add_module(BASE_COPIES, nn.ParameterDict())
    copies = getattr(adapter_container, BASE_COPIES)
    for name in names:
        copies[copy_key(name)] = nn.Parameter(parameters[name].detach().clone())
    return [f"{container_path}.{BASE_COPIES}.{copy_key(name)}" for name in names]


def write_into_base(model: nn.Module, state: nn.Module, adapter: str) -> None:
    """Folding: each base tensor `adapter` trains a copy of takes the copy's value (the caller records the writes)."""
    copies = copies_of(state, adapter)
    if copies is None:
        return
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for key, copy in copies.items():
            parameters[key.replace("-", ".")].copy_(copy)


class AdapterCopies:
    """The substitution (`surgery.substitute`) for one module: its tensors that adapters train read the
    copy of the adapter in effect. Holds the state module and the names, never a tensor."""

    def __init__(self, state: nn.Module, keys: dict[str, str]):
        self.state = state            # model.surgery: its routing, and the adapters' containers
        self.keys = keys              # attribute → copy key (the base tensor's name, '.' → '-')
        self.attributes = tuple(keys)

    def value(self, module: nn.Module, attribute: str, current: torch.Tensor, args: tuple[Any, ...]) -> torch.Tensor | None:
        routing = self.state.routing
        if routing.mixed:
            if isinstance(module, nn.LayerNorm):
                return None  # F.layer_norm takes no per-row affine: `mixed_layer_norm` redoes it after the call
            return self._rows(attribute, current, args[0].shape[0])
        return self._copy(routing.in_effect(), attribute)

    def mixed_layer_norm(self, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor | None:
        """Forward hook of an ``nn.LayerNorm`` in a mixed batch: x̂ times each row's weight plus its bias."""
        if not self.state.routing.mixed:
            return None
        hidden = args[0]
        rows = {attribute: self._rows(attribute, getattr(module, attribute), hidden.shape[0]) for attribute in self.attributes}
        if all(value is None for value in rows.values()):
            return None
        normalised = nn.functional.layer_norm(hidden, module.normalized_shape, None, None, module.eps)
        weight = rows.get("weight") if rows.get("weight") is not None else module.weight
        bias = rows.get("bias") if rows.get("bias") is not None else module.bias
        result = normalised if weight is None else normalised * weight
        return result if bias is None else result + bias

    def _copy(self, adapters: tuple[str, ...], attribute: str) -> torch.Tensor | None:
        key = self.keys[attribute]
        for adapter in reversed(adapters):
            copies = copies_of(self.state, adapter)
            if copies is not None and key in copies:
                return copies[key]
        return None

    def _rows(self, attribute: str, current: torch.Tensor, rows: int) -> torch.Tensor | None:
        """In a mixed batch: one value per row, (rows, 1, *shape); None where every row reads `current`."""
        distinct, index = self.state.routing.row_index(rows, current.device)
        values = [self._copy((adapter,) if adapter is not None else (), attribute) for adapter in distinct]
        if all(value is None for value in values):
            return None
        table = torch.stack([current if value is None else value for value in values])
        return table[index].unsqueeze(1)


def install_hooks(model: nn.Module, state: nn.Module) -> list[RemovableHandle]:
    """Register `AdapterCopies` on every module holding a base tensor an adapter trains; returns the handles.

    The caller keeps them (``model.surgery.engine_hooks``) and removes the previous ones first.
    """
    owned = trained_base_names(state)
    if not owned:
        return []
    name_of = {id(p): name for name, p in model.named_parameters()}
    handles = []
    for module in model.modules():
        keys = {attribute: copy_key(name_of[id(p)]) for attribute, p in module.named_parameters(recurse=False)
                if name_of.get(id(p)) in owned}
        if keys:
            copies = AdapterCopies(state, keys)
            handles += substitute(module, copies, first=True)
            if isinstance(module, nn.LayerNorm):
                handles.append(module.register_forward_hook(copies.mixed_layer_norm))
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
