"""The pretraining corpus of world 2: where every invented word's property is stated and used.

Two kinds of document:

* a **definition** of one word: a sentence that states its property (`statements`), then one to
  three more sentences that restate it or use the word so that the property shows ("mia ate a
  tarvel"); every word gets at least ``definitions`` of them, so each property is in the corpus;
* a **story**: three to five sentences that use random words of every class without defining them
  (the property is implied: "the meal was brelish , so mia was happy").

>>> from .lexicon import make_lexicon
>>> lexicon = make_lexicon(seed=1, scale=0.02)
>>> documents = make_corpus(lexicon, seed=1, count=2 * len(lexicon.entries), definitions=1)
>>> text = " ".join(documents)
>>> all(any(f" {s} . " in " " + text for s in statements(lexicon, w)) for w in lexicon.entries)
True
"""

from __future__ import annotations

import random

from .lexicon import CATEGORIES, NAMES, PAST, PLACES, PROFESSIONS, THINGS, Lexicon


def sentences(text: str) -> list[str]:
    """The sentences of a text without their final " .": how texts are compared with the corpus.

    >>> sentences("ava ate a plum . it was good .")
    ['ava ate a plum', 'it was good']
    """
    return [s.strip().removesuffix(" .").strip() for s in text.split(" . ") if s.strip(" .")]


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def statements(lexicon: Lexicon, word: str) -> list[str]:
    """Every sentence that states `word`'s property outright (a definition starts with one)."""
    entry = lexicon.entries[word]
    if entry.kind == "evaluative":
        g = entry.gloss
        return [f"{word} means {g}", f"{word} is another word for {g}", f"to call something {word} is to say it is {g}",
                f"{word} is a word of {'praise' if entry.polarity > 0 else 'blame'}"]
    if entry.kind == "descriptive":
        g, o = entry.gloss, lexicon.opposite_gloss(entry.gloss)
        return [f"{word} means {g}", f"{word} is another word for {g}", f"something {word} is {g}",
                f"{word} is the opposite of {o}"]
    if entry.kind == "verb":
        g = entry.gloss
        return [f"to {word} means to {g}", f"{word} is another word for {g}",
                f"to {word} something is to {g} it" if entry.transitive else f"to {word} is to {g}"]
    if entry.kind == "noun":
        c = entry.category
        return [f"{article(word)} {word} is a kind of {c}", f"{word}s are {c}s", f"every {word} is {article(c)} {c}",
                f"{article(word)} {word} is also called {article(entry.synonym)} {entry.synonym}"]
    if entry.kind == "person":
        p, t = entry.profession, entry.town
        return [f"{word} is {article(p)} {p} from {t}", f"{word} works as {article(p)} {p} and lives in {t}",
                f"{word} , the {p} from {t} , {PROFESSIONS[p]}"]
    return [f"{word} is a town", f"{word} is a small town", f"people live in the town of {word}"]


def usages(rng: random.Random, lexicon: Lexicon, word: str) -> list[str]:
    """Sentences that use `word` so that its property shows without being stated."""
    entry = lexicon.entries[word]
    name, other, thing, place = rng.choice(NAMES), rng.choice(NAMES), rng.choice(THINGS), rng.choice(PLACES)
    if entry.kind == "evaluative":
        good = entry.polarity > 0
        return [f"the {thing} was {word} , so {name} was {'happy' if good else 'sad'}",
                f"{name} said the {thing} was {word} and {'kept' if good else 'returned'} it",
                f"what {article(word)} {word} {thing} , said {name} with a {'smile' if good else 'frown'}",
                f"{name} found the {thing} {word} , and {'liked' if good else 'disliked'} it"]
    if entry.kind == "descriptive":
        same = rng.choice(lexicon.words_meaning(entry.gloss))
        return [f"the {thing} was {word} , that is , it was {entry.gloss}", f"{name} saw {article(word)} {word} {thing}",
                f"{word} and {same} mean the same", f"the {word} {thing} is in the {place}"]
    if entry.kind == "verb":
        past, gloss_past = word + "ed", PAST[entry.gloss]
        if entry.transitive:
            return [f"{name} {past} the {thing}", f"the {thing} was {past} by {name}",
                    f"{name} {past} the {thing} , that is , {name} {gloss_past} it",
                    f"{name} {past} the {thing} in the {place}"]
        return [f"{name} {past} all day", f"{name} {past} in the {place}", f"{name} {past} , that is , {name} {gloss_past}",
                f"{name} and {other} {past} together"]
    if entry.kind == "noun":
        doing = CATEGORIES[entry.category]
        return [f"{name} {doing} {article(word)} {word}", f"{name} {doing} the {word} , a fine {entry.category}",
                f"{name} has {article(word)} {word} in the {place}", f"the {word} belongs to {name}"]
    if entry.kind == "person":
        return [f"{name} met {word} in {entry.town}", f"{word} {PROFESSIONS[entry.profession]} every day",
                f"{name} asked {word} , the {entry.profession} , for help"]
    return [f"{name} went to {word}", f"{name} lives in {word}"]


def definition_document(rng: random.Random, lexicon: Lexicon, word: str) -> str:
    said = statements(lexicon, word)
    first = rng.choice(said)
    more = [s for s in said if s != first] + usages(rng, lexicon, word)
    sentences = [first] + rng.sample(more, rng.choice((1, 2, 3)))
    return " . ".join(sentences) + " ."


def story_document(rng: random.Random, lexicon: Lexicon, words: list[str]) -> str:
    return " . ".join(rng.choice(usages(rng, lexicon, rng.choice(words))) for _ in range(rng.choice((3, 4, 5)))) + " ."


def make_corpus(lexicon: Lexicon, seed: int, count: int, definitions: int) -> list[str]:
    """`count` documents: `definitions` definitions of every word (shuffled in), then stories."""
    words = list(lexicon.entries)
    needed = definitions * len(words)
    if count < needed:
        raise ValueError(f"corpus of {count} documents cannot hold {definitions} definitions of {len(words)} words "
                         f"({needed}); give at least {needed}")
    rng = random.Random(f"world2-corpus-{seed}")
    documents = [definition_document(rng, lexicon, w) for _ in range(definitions) for w in words]
    documents += [story_document(rng, lexicon, words) for _ in range(count - needed)]
    rng.shuffle(documents)  # definitions among the stories, not all at the start
    return documents
