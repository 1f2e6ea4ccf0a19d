"""T5's pretraining objective: span corruption (Raffel et al., 2020, Section 3.1.4).

About 15 % of the tokens of a text (``noise_density``) are dropped in spans whose mean length is
3 (``mean_span_length``). Each dropped span is replaced in the input by one sentinel token; the
target lists, in order, each span's sentinel followed by the tokens it replaced::

    text      the lamp was sold to tom by mia yesterday .
    mask          ─────            ────
    input     the <extra_id_0> to tom by <extra_id_1> yesterday .
    target    <extra_id_0> lamp was sold <extra_id_1> mia

As in the T5 code, the mask is drawn by splitting the noise tokens into ``round(noise / mean)``
spans and the other tokens into as many gaps, each split uniformly at random, and interleaving
them starting with a gap (so the text never starts with a dropped span). Input and target each
end with EOS (added by :func:`corrupt_example`).

>>> import numpy as np
>>> mask = noise_mask(20, np.random.default_rng(0))
>>> int(mask.sum()), bool(mask[0])               # round(20 × 0.15) = 3 noise tokens, 1 span
(3, False)
>>> corrupt([5, 6, 7, 8, 9], np.array([False, True, True, False, True]), sentinels=[100, 99])
([5, 100, 8, 99], [100, 6, 7, 99, 9])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NOISE_DENSITY = 0.15
MEAN_SPAN_LENGTH = 3.0


def random_segmentation(rng: np.random.Generator, items: int, segments: int) -> np.ndarray:
    """`segments` positive integers summing to `items`, every such split equally likely.

    >>> random_segmentation(np.random.default_rng(1), items=7, segments=3).sum()
    np.int64(7)
    """
    if not 1 <= segments <= items:
        raise ValueError(f"cannot split {items} items into {segments} non-empty segments")
    cuts = np.sort(rng.choice(np.arange(1, items), size=segments - 1, replace=False))
    return np.diff(np.concatenate([[0], cuts, [items]]))


def noise_mask(length: int, rng: np.random.Generator, noise_density: float = NOISE_DENSITY,
               mean_span_length: float = MEAN_SPAN_LENGTH) -> np.ndarray:
    """A boolean mask over `length` tokens, True on the dropped spans (see the module docstring).

    At least one token is dropped and one kept, so every example has a target and an input.
    """
    if length < 2:
        raise ValueError(f"span corruption needs at least 2 tokens, got {length}")
    noise = min(max(int(round(length * noise_density)), 1), length - 1)
    spans = min(max(int(round(noise / mean_span_length)), 1), noise, length - noise)
    noise_lengths = random_segmentation(rng, noise, spans)
    kept_lengths = random_segmentation(rng, length - noise, spans)
    mask = np.zeros(length, dtype=bool)
    position = 0
    for kept, dropped in zip(kept_lengths, noise_lengths):
        position += kept
        mask[position:position + dropped] = True
        position += dropped
    return mask


def corrupt(tokens: Sequence[int], mask: np.ndarray, sentinels: Sequence[int]) -> tuple[list[int], list[int]]:
    """(input, target) ids: each masked span becomes the next sentinel in the input, and the
    target is every span's sentinel followed by its tokens. No EOS is added here."""
    if len(tokens) != len(mask):
        raise ValueError(f"{len(tokens)} tokens but a mask of {len(mask)}")
    inputs: list[int] = []
    targets: list[int] = []
    span, inside = -1, False
    for token, dropped in zip(tokens, mask):
        if dropped and not inside:
            span += 1
            if span >= len(sentinels):
                raise ValueError(f"the mask has more spans than the {len(sentinels)} sentinel tokens")
            inputs.append(sentinels[span])
            targets.append(sentinels[span])
        (targets if dropped else inputs).append(int(token))
        inside = bool(dropped)
    return inputs, targets


def corrupt_example(tokens: Sequence[int], rng: np.random.Generator, sentinels: Sequence[int], eos_id: int,
                    noise_density: float = NOISE_DENSITY,
                    mean_span_length: float = MEAN_SPAN_LENGTH) -> tuple[list[int], list[int]]:
    """One training pair from a chunk of text ids: span-corrupted input and target, each + EOS.

    >>> source, target = corrupt_example(list(range(10, 30)), np.random.default_rng(0), sentinels=[99, 98], eos_id=1)
    >>> source[-1] == target[-1] == 1, target[0]
    (True, 99)
    """
    inputs, targets = corrupt(tokens, noise_mask(len(tokens), rng, noise_density, mean_span_length), sentinels)
    return inputs + [eos_id], targets + [eos_id]


def sentinel_ids(tokenizer, count: int = 100) -> list[int]:
    """The ids of ``<extra_id_0>``, ``<extra_id_1>``, … in `tokenizer` (T5's sentinel tokens)."""
    ids = [tokenizer.convert_tokens_to_ids(f"<extra_id_{i}>") for i in range(count)]
    unknown = getattr(tokenizer, "unk_token_id", None)
    if any(i is None or i == unknown for i in ids):
        raise ValueError(f"the tokenizer has no {count} sentinel tokens <extra_id_0> … <extra_id_{count - 1}>; "
                         "T5 tokenizers have 100 (extra_ids=100)")
    return ids
