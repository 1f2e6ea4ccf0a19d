"""What an adapter checkpoint holds: the trained tensors, and every tensor surgery added.

The same function serves the plan (on its meta replica: the names, shapes and dtypes a
checkpoint of this recipe must hold, known before anything is allocated) and the checkpoint
(on the real model: the tensors to write, or to load into).
"""

from __future__ import annotations

import torch
from torch import nn

from .errors import SurgeryError
from .naming import DEFAULT_ADAPTER, STATE, adapter_of, canonical_name, is_added


def clean_name(name: str) -> str:
    """A parameter name without FSDP1's wrapper segments."""
    return name.replace("_fsdp_wrapped_module.", "").replace("_checkpoint_wrapped_module.", "")


def checkpoint_names(inner: nn.Module, state: nn.Module, include_frozen_added: bool = True,
                     adapter: str = DEFAULT_ADAPTER) -> list[str]:
    """What a checkpoint of `adapter` holds, by the names the model has: its trained parameters, and
    everything surgery added for it (parameters and persistent buffers; non-persistent ones, e.g.
    projections regenerated from a seed, stay out). `canonical_name` gives the checkpoint's names.

    `include_frozen_added=False` reads the first format, which held trained tensors only.
    """
    trained = {name for names in state.record(adapter).groups.values() for name in names}

    def own(name: str) -> bool:
        return is_added(name) and adapter_of(name) == adapter

    names = [clean_name(n) for n, _ in inner.named_parameters()
             if clean_name(n) in trained or (include_frozen_added and own(clean_name(n)))]
    persistent = {clean_name(n) for n in inner.state_dict(keep_vars=True)}
    names += [clean_name(n) for n, _ in inner.named_buffers() if own(clean_name(n)) and clean_name(n) in persistent]
    return list(dict.fromkeys(names))


def adapter_tensors(model: nn.Module, adapter: str = DEFAULT_ADAPTER,
                    include_frozen_added: bool = True) -> dict[str, torch.Tensor]:
    """checkpoint name → tensor of everything `checkpoint_names` lists for `adapter`, on an unwrapped model.

    The names are those of the default adapter whatever `adapter` is, so a checkpoint loads under any name.

    >>> import surgery
    >>> from transformers import T5Config, T5ForConditionalGeneration
    >>> model = T5ForConditionalGeneration(T5Config(d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2, vocab_size=32))
    >>> _ = surgery.apply(model, {"method": "adapter", "sites": ["after_ffn"], "options": {"bottleneck": 2}})
    >>> sorted(adapter_tensors(model))[:2]
    ['decoder.block.0.spliced.after_ffn.down.bias', 'decoder.block.0.spliced.after_ffn.down.weight']
    >>> _ = surgery.apply(model, {"method": "adapter", "sites": ["after_ffn"], "options": {"bottleneck": 2}}, name="b")
    >>> sorted(adapter_tensors(model, "b"))[:2]
    ['decoder.block.0.spliced.after_ffn.down.bias', 'decoder.block.0.spliced.after_ffn.down.weight']
    """
    state = getattr(model, STATE, None)
    if state is None:
        raise SurgeryError("no surgery was applied to this model, so it has no adapter")
    values = {**{clean_name(n): p for n, p in model.named_parameters()}, **{clean_name(n): b for n, b in model.named_buffers()}}
    return {canonical_name(name, adapter): values[name]
            for name in checkpoint_names(model, state, include_frozen_added, adapter)}


def tensor_layout(tensors: dict[str, torch.Tensor]) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """name → (shape, dtype): what a checkpoint of these tensors must hold."""
    return {name: (tuple(t.shape), t.dtype) for name, t in tensors.items()}
