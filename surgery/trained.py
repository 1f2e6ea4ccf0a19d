"""What an adapter checkpoint holds: the trained tensors, and the buffers surgery added.

The same function serves the plan (on its meta replica: the names, shapes and dtypes a
checkpoint of this recipe must have, known before anything is allocated) and the checkpoint
(on the real model: the tensors to write, or to load into).
"""

from __future__ import annotations

import torch
from torch import nn

from .errors import SurgeryError
from .naming import STATE, is_added


def adapter_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every trained parameter once (a shared one under its owner's name), plus added persistent buffers.

    Non-persistent buffers (e.g. projections regenerated from a seed) stay out, as in `state_dict`.

    >>> import surgery
    >>> from transformers import T5Config, T5ForConditionalGeneration
    >>> model = T5ForConditionalGeneration(T5Config(d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2, vocab_size=32))
    >>> _ = surgery.apply(model, {"method": "adapter", "sites": ["after_ffn"], "options": {"bottleneck": 2}})
    >>> sorted(adapter_tensors(model))[:2]
    ['decoder.block.0.spliced.after_ffn.down.bias', 'decoder.block.0.spliced.after_ffn.down.weight']
    """
    state = getattr(model, STATE, None)
    if state is None:
        raise SurgeryError("no surgery was applied to this model, so it has no adapter")
    trained = {name for names in state.groups.values() for name in names}
    tensors = {name: p for name, p in model.named_parameters() if name in trained}
    persistent = set(model.state_dict(keep_vars=True))
    for name, buffer in model.named_buffers():
        if is_added(name) and name in persistent:
            tensors[name] = buffer
    return tensors


def tensor_layout(tensors: dict[str, torch.Tensor]) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """name → (shape, dtype): what a checkpoint of these tensors must hold."""
    return {name: (tuple(t.shape), t.dtype) for name, t in tensors.items()}
