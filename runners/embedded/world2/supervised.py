"""Supervised pairs mixed into world 2's pretraining (as T5 v1.0 mixed supervised tasks in).

Each pair asks for one word's property in a format none of the benchmark's tasks uses:

==============  ========================  =====================================================
source          target                    for
==============  ========================  =====================================================
``define: w``   its gloss or category     every word ("good", "to push", "fruit",
                                          "baker from dorsa", "a town")
``opposite: w`` the opposite gloss        descriptive words
``synonym: w``  the other word            nouns
==============  ========================  =====================================================

The words come round in a seeded order, so every word is asked about; the pairs state nothing the
corpus does not (see `corpus.statements`).

>>> from .lexicon import make_lexicon
>>> lexicon = make_lexicon(seed=1, scale=0.02)
>>> pairs = supervised_examples(lexicon, seed=1, count=len(lexicon.entries))
>>> len({source.split(": ")[1] for source, _ in pairs}) == len(lexicon.entries)
True
"""

from __future__ import annotations

import random

from .lexicon import Lexicon


def answers(lexicon: Lexicon, word: str) -> list[tuple[str, str]]:
    """Every (source, target) pair about `word`."""
    entry = lexicon.entries[word]
    if entry.kind in ("evaluative", "descriptive"):
        pairs = [(f"define: {word}", entry.gloss)]
        if entry.kind == "descriptive":
            pairs.append((f"opposite: {word}", lexicon.opposite_gloss(entry.gloss)))
        return pairs
    if entry.kind == "verb":
        return [(f"define: {word}", f"to {entry.gloss}")]
    if entry.kind == "noun":
        return [(f"define: {word}", entry.category), (f"synonym: {word}", entry.synonym)]
    if entry.kind == "person":
        return [(f"define: {word}", f"{entry.profession} from {entry.town}")]
    return [(f"define: {word}", "a town")]


def supervised_examples(lexicon: Lexicon, seed: int, count: int) -> list[tuple[str, str]]:
    """`count` pairs: the words in a seeded order, again and again, one of each word's pairs."""
    rng = random.Random(f"world2-supervised-{seed}")
    words = list(lexicon.entries)
    pairs: list[tuple[str, str]] = []
    while len(pairs) < count:
        rng.shuffle(words)
        pairs += [rng.choice(answers(lexicon, w)) for w in words[:count - len(pairs)]]
    return pairs
