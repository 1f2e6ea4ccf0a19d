"""Let users discover the sites a model offers before writing a recipe."""

from __future__ import annotations

from torch import nn

from .family_registry import detect_family
from .sites import find_sites
from .tracing import trace_block


def list_sites(model: nn.Module) -> dict[str, list[str]]:
    """Sites offered by each block, found by tracing (the model is not changed).

    >>> from transformers import T5Config, T5ForConditionalGeneration
    >>> model = T5ForConditionalGeneration(T5Config(d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2, vocab_size=32))
    >>> list_sites(model)
    {'encoder.block.0': ['after_self_attention', 'after_ffn'], 'decoder.block.0': ['after_self_attention', 'after_cross_attention', 'after_ffn']}
    """
    family = detect_family(model)
    dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())
    sites = {}
    paths = family.block_paths(model)
    for stack, blocks in family.blocks(model).items():
        for index, block in enumerate(blocks):
            where = f"{paths[stack]}.{index}"
            sites[where] = list(find_sites(trace_block(block, family, dtype, where=where), block, family))
    return sites
