"""Review sentences whose polarity is composed: negators flip, the main clause of a contrast decides."""

from __future__ import annotations

import random

from .world import article
from .lexicon import (INTENSIFIERS, ITEMS, LINKING_VERBS, NAMES, NEGATIVE_ADJECTIVES, NEGATIVE_VERBS,
                      PARTS, POSITIVE_ADJECTIVES, POSITIVE_VERBS, TIME_PHRASES, ATTRIBUTES)

NEGATION_RATE = 0.3
SHAPES = (("single", 40), ("and", 20), ("neutral", 15), ("but", 13), ("although", 6), ("even_though", 6))


def _subject(rng: random.Random, noun: str) -> str:
    if rng.random() < 0.5:
        return f"the {rng.choice(PARTS)} of the {noun}"
    return f"the {noun}" if rng.random() < 0.6 else f"its {rng.choice(PARTS)}"


NEGATED_LINKS = ("was not", "was never", "was hardly", "did not seem", "did not look", "did not feel")


def adjective_clause(rng: random.Random, polarity: int, noun: str) -> str:
    """ "the battery of the lamp was not very good" with overall polarity ±1."""
    negated = rng.random() < NEGATION_RATE
    word_polarity = -polarity if negated else polarity
    adjective = rng.choice(POSITIVE_ADJECTIVES if word_polarity > 0 else NEGATIVE_ADJECTIVES)
    link = rng.choice(NEGATED_LINKS) if negated else rng.choice(LINKING_VERBS)
    words = [_subject(rng, noun), link]
    if rng.random() < 0.4 and "hardly" not in link:
        words.append(rng.choice(INTENSIFIERS))
    words.append(adjective)
    return " ".join(words)


def opinion_clause(rng: random.Random, polarity: int, noun: str, person: str) -> str:
    """ "mia adored the lamp" / "mia did not like the lamp"."""
    negated = rng.random() < NEGATION_RATE
    past, base = rng.choice(POSITIVE_VERBS if (polarity > 0) != negated else NEGATIVE_VERBS)
    verb = rng.choice((f"did not {base}", f"never {past}")) if negated else rng.choice((past, f"really {past}"))
    target = rng.choice((f"the {noun}", f"the {rng.choice(PARTS)} of the {noun}", "it"))
    return f"{person} {verb} {target}"


def polar_clause(rng: random.Random, polarity: int, noun: str, person: str) -> str:
    if rng.random() < 0.7:
        return adjective_clause(rng, polarity, noun)
    return opinion_clause(rng, polarity, noun, person)


def neutral_clause(rng: random.Random, noun: str) -> str:
    slot = rng.choice(("color", "size", "material"))
    return f"{_subject(rng, noun)} was {rng.choice(ATTRIBUTES[slot])}"


def review_sentence(rng: random.Random, polarity: int, noun: str | None = None, person: str | None = None) -> str:
    """One review sentence with sentiment `polarity` (+1 positive, -1 negative), no final period."""
    noun = noun or rng.choice(ITEMS)
    person = person or rng.choice(NAMES)
    shape = rng.choices([n for n, _ in SHAPES], weights=[w for _, w in SHAPES])[0]
    clause = lambda p: polar_clause(rng, p, noun, person)  # noqa: E731
    if shape == "single":
        sentence = clause(polarity)
    elif shape == "and":
        sentence = f"{clause(polarity)} and {clause(polarity)}"
    elif shape == "neutral":
        parts = [clause(polarity), neutral_clause(rng, noun)]
        rng.shuffle(parts)
        sentence = " and ".join(parts)
    elif shape == "but":
        sentence = f"{clause(-polarity)} but {clause(polarity)}"
    elif shape == "although":
        sentence = f"although {clause(-polarity)} , {clause(polarity)}"
    else:
        sentence = f"{clause(polarity)} , even though {clause(-polarity)}"
    if rng.random() < 0.25:
        phrase = rng.choice(TIME_PHRASES)
        sentence = f"{phrase} , {sentence}" if rng.random() < 0.5 else f"{sentence} {phrase}"
    return sentence


VERDICTS = {
    1: ("verdict : positive", "overall , {p} would recommend it", "rating : five stars", "rating : four stars",
        "in short , a good buy", "{p} was happy with it", "thumbs up", "rating : {high} out of 5"),
    -1: ("verdict : negative", "overall , {p} would not recommend it", "rating : one star", "rating : two stars",
         "in short , a bad buy", "{p} was unhappy with it", "thumbs down", "rating : {low} out of 5"),
}


def review_document(rng: random.Random) -> str:
    """A short review: who bought what, one or two evaluative sentences, then the verdict they imply."""
    noun, person = rng.choice(ITEMS), rng.choice(NAMES)
    polarity = rng.choice((1, -1))
    sentences = [f"{person} bought {article(noun)} {noun} {rng.choice(TIME_PHRASES)}"]
    sentences += [review_sentence(rng, polarity, noun, person) for _ in range(rng.choice((1, 1, 2)))]
    high, low = f"{rng.randrange(15, 26) / 5:.1f}", f"{rng.randrange(0, 15) / 5:.1f}"
    verdict = rng.choice(VERDICTS[polarity]).format(p=person, high=high, low=low)
    sentences.append(verdict)
    return " . ".join(sentences) + " ."
