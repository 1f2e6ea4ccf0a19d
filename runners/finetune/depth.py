"""Fitting a recipe's ``skip_first`` to a model shallower than the one it was written for.

The AdapterDrop recipes skip the first 5 blocks of each stack, as the paper does on T5-base (12
blocks a stack). On a model whose stack has at most 5 blocks (the embedded T5 has 3), that
selection is empty or invalid, and `surgery.plan` rightly refuses it. The finetune runner keeps
the recipe's *share* instead: it skips round(5 · depth / 12) blocks, and says so in a note. Only
the bundled recipes are fitted, as they are written: a recipe file of one's own and a ``--set
layers.skip_first=N`` are checked by the engine as given.

>>> notes = []
>>> fit_skip_first({"name": "adapterdrop", "layers": {"skip_first": 5}}, {"encoder": 3, "decoder": 3}, notes)["layers"]
{'encoder': {'skip_first': 1}, 'decoder': {'skip_first': 1}}
>>> print(notes[0])
recipe 'adapterdrop': layers skip_first 5 leaves no block of the model's 3 (encoder), 3 (decoder); skipping the first 1 instead (5/12 of each stack, as on T5-base's 12 blocks, rounded)
>>> fit_skip_first({"layers": {"skip_first": 5}}, {"encoder": 6, "decoder": 6}, [])["layers"]
{'skip_first': 5}
>>> fit_skip_first({"layers": {"skip_first": 5}}, {"decoder": 4}, [])["layers"]   # a decoder-only model
{'decoder': {'skip_first': 2}}
"""

from __future__ import annotations

import copy
from typing import Any

PAPER_DEPTH = 12  # T5-base, the model the paper's AdapterDrop selection (skip the first 5) was written for


def stack_depths(model: Any) -> dict[str, int]:
    """Blocks per stack of `model` as its family declaration finds them: {"encoder": 6, "decoder": 6}."""
    from surgery.family_registry import detect_family

    return {stack: len(blocks) for stack, blocks in detect_family(model).blocks(model).items()}


def fit_skip_first(mapping: dict[str, Any], depths: dict[str, int], notes: list[str]) -> dict[str, Any]:
    """`mapping` with every ``skip_first`` that leaves no block of its stack scaled to the stack's depth
    (`depths`: blocks per stack, as `stack_depths` reads them)."""
    layers = mapping.get("layers")
    if not isinstance(layers, dict):
        return mapping
    one_selection = "skip_first" in layers
    per_stack = {stack: layers for stack in depths} if one_selection else dict(layers)
    fitted: dict[str, Any] = {}
    changed: list[tuple[str, int, int, int]] = []
    for stack, spec in per_stack.items():
        depth = depths.get(stack)
        skip = spec.get("skip_first") if isinstance(spec, dict) else None
        if depth and isinstance(skip, int) and skip >= depth:
            kept = max(0, min(depth - 1, round(skip * depth / PAPER_DEPTH)))
            fitted[stack] = {**spec, "skip_first": kept}
            changed.append((stack, skip, depth, kept))
        else:
            fitted[stack] = spec
    if not changed:
        return mapping
    result = copy.deepcopy(mapping)
    result["layers"] = fitted
    skips = sorted({skip for _, skip, _, _ in changed})
    kept = sorted({kept for _, _, _, kept in changed})
    stacks = ", ".join(f"{depth} ({stack})" for stack, _, depth, _ in changed)
    notes.append(f"recipe {mapping.get('name', '?')!r}: layers skip_first {'/'.join(map(str, skips))} leaves no block "
                 f"of the model's {stacks}; skipping the first {'/'.join(map(str, kept))} instead "
                 f"({'/'.join(map(str, skips))}/{PAPER_DEPTH} of each stack, as on T5-base's {PAPER_DEPTH} blocks, rounded)")
    return result
