"""The pretraining corpus: documents in the embedded language (stories, reviews, comparisons, edits)."""

from __future__ import annotations

import random

from .reviews import review_document
from .stories import story_document
from .benchmark import SIMILARITY_WEIGHTS, acceptable_sentence, describe, perturb
from .world import random_thing

ATTRIBUTE_WORDS = {"noun": "kind", "color": "color", "material": "material", "size": "size", "place": "place",
                   "owner": "owner"}


def comparison_document(rng: random.Random) -> str:
    """Two things described, then which details they share."""
    things = [random_thing(rng), random_thing(rng)]
    if rng.random() < 0.5:
        things[1].noun = things[0].noun
    slots = [{"noun": t.noun, "color": t.attributes["color"], "material": t.attributes["material"],
              "size": t.attributes["size"], "place": t.place, "owner": t.owner} for t in things]
    for slot in slots[1]:
        if rng.random() < 0.5:
            slots[1][slot] = slots[0][slot]
    shared = [s for s in SIMILARITY_WEIGHTS if slots[0][s] == slots[1][s]]
    text = [describe(rng, slots[0]).removesuffix(" ."), describe(rng, slots[1]).removesuffix(" .")]
    if len(shared) == len(SIMILARITY_WEIGHTS):
        text.append("the two are alike in every way")
    elif not shared:
        text.append("the two have nothing in common")
    else:
        words = [f"the {ATTRIBUTE_WORDS[s]}" for s in shared]
        listed = words[0] if len(words) == 1 else " , ".join(words[:-1]) + f" and {words[-1]}"
        text.append(f"the two share {listed} and nothing else")
    return " . ".join(text) + " ."


def edit_document(rng: random.Random) -> str:
    """A sentence with a grammatical error and its correction, or a sentence an editor kept."""
    good = acceptable_sentence(rng)
    bad = perturb(rng, good)
    if bad is None or rng.random() < 0.3:
        return f"the editor read : {good} . the editor kept it ."
    return f"the draft said : {bad} . the editor fixed it : {good} ."


DOCUMENTS = ((story_document, 45), (review_document, 30), (comparison_document, 13), (edit_document, 12))


def make_corpus(seed: int, count: int) -> list[str]:
    rng = random.Random(f"corpus-{seed}")
    makers, weights = zip(*DOCUMENTS)
    return [rng.choices(makers, weights=weights)[0](rng) for _ in range(count)]
