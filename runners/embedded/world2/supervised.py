"""Supervised pairs mixed into world 2's pretraining (as T5 v1.0 mixed supervised tasks in).

Each pair asks for one word's property in a format none of the benchmark's tasks uses:

==============  ========================  =====================================================
source          target                    for
==============  ========================  =====================================================
``define: w``   its gloss or category     every word ("good", "push", "fruit",
                                          "baker from dorsa", "a town")
``opposite: w`` the opposite gloss        descriptive words
``synonym: w``  the other word            nouns
``explain: s``  ``property ; …``          words used in plain sentences whose context shows
                                          nothing of their properties: half the pairs one to
                                          three words, a sentence each; half two to six words,
                                          several to a sentence (a name, an adjective, a noun,
                                          a town, a verb); the properties in the order of the
                                          words
==============  ========================  =====================================================

``define:`` asks about a word alone; ``explain:`` asks about words where they stand in a
sentence. Its answer starts with the first word's property, not with the word: the decoder then
learns to retrieve a property at its first step from a plain sentence, which is where a task's
label is decoded. (With answers ``w : property`` the retrieval happened after ``w :`` only, and
fine-tuning memorised its training words instead of reading it: held-out sst2 words at chance;
``benchmarks/results/world2-2026-12-02/probes-tokenizer/README.md``.) A verb's answer is its gloss
alone (``yawn``, not ``to yawn``), so that every answer's first word tells the property: with
``to …`` answers the checkpoint reached 67.5 on held-out sst2 words, with these 72.7
(``benchmarks/results/world2-2026-12-03/``).

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

from .corpus import article, sentences
from .lexicon import NAMES, PLACES, THINGS, Lexicon


def answers(lexicon: Lexicon, word: str) -> list[tuple[str, str]]:
    """Every (source, target) pair about `word`."""
    entry = lexicon.entries[word]
    if entry.kind in ("evaluative", "descriptive"):
        pairs = [(f"define: {word}", entry.gloss)]
        if entry.kind == "descriptive":
            pairs.append((f"opposite: {word}", lexicon.opposite_gloss(entry.gloss)))
        return pairs
    if entry.kind == "verb":
        return [(f"define: {word}", entry.gloss)]
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


def property_phrase(lexicon: Lexicon, word: str) -> str:
    """A word's property as ``explain:`` answers it: the same as ``define:``'s answer."""
    return answers(lexicon, word)[0][1]


def plain_use(rng: random.Random, lexicon: Lexicon, word: str) -> str:
    """A sentence that uses `word` in a context that shows nothing of its property.

    The frames differ from the benchmark's templates and from the corpus's sentences that imply
    a property ("the meal was brelish , so mia was happy")."""
    entry = lexicon.entries[word]
    name, thing, place = rng.choice(NAMES), rng.choice(THINGS), rng.choice(PLACES)
    if entry.kind in ("evaluative", "descriptive"):
        return rng.choice((f"{name} spoke of {article(word)} {word} {thing}", f"{name} wrote about the {word} {thing}",
                           f"{name} asked about the {word} {thing} in the {place}"))
    if entry.kind == "verb":
        return rng.choice((f"{name} wanted to {word}", f"{name} talked about how to {word}",
                           f"{name} heard the word {word} in the {place}"))
    if entry.kind == "noun":
        return rng.choice((f"{name} spoke of {article(word)} {word}", f"{name} wrote about the {word} in the {place}",
                           f"{name} asked about {word}s"))
    return rng.choice((f"{name} spoke of {word}", f"{name} wrote about {word}", f"{name} asked about {word}"))


def explain_examples(lexicon: Lexicon, seed: int, count: int) -> list[tuple[str, str]]:
    """`count` pairs ``explain: <plain sentences>`` → ``property ; …``, every word in turn.

    >>> from .lexicon import make_lexicon
    >>> lexicon = make_lexicon(seed=5, scale=0.02)
    >>> source, target = explain_examples(lexicon, seed=1, count=1)[0]
    >>> source
    'explain: lia wrote about the slivol gift and wanted to flukrin . ana asked about the plole film . kim asked about the slebrusk voskol .'
    >>> target
    'short ; dance ; light ; awful ; tool'
    >>> [property_phrase(lexicon, w) for w in ("slivol", "flukrin", "plole", "slebrusk", "voskol")] == target.split(" ; ")
    True
    """
    rng = random.Random(f"world2-explain-{seed}")
    order: list[str] = []
    pairs: list[tuple[str, str]] = []
    while len(pairs) < count:
        if len(order) < max(MULTI_WORD_COUNTS):
            order += rng.sample(list(lexicon.entries), len(lexicon.entries))
        if rng.random() < MULTI_WORD_SHARE:
            groups = clause_groups(lexicon, [order.pop() for _ in range(rng.choice(MULTI_WORD_COUNTS))])
            sentence = " . ".join(plain_clause(rng, lexicon, group) for group in groups)
            words = [w for group in groups for w in group]
        else:
            words = [order.pop() for _ in range(rng.choice((1, 2, 3)))]
            sentence = " . ".join(plain_use(rng, lexicon, w) for w in words)
        pairs.append((f"explain: {sentence} .", " ; ".join(property_phrase(lexicon, w) for w in words)))
    return pairs


# A share of the explain: pairs put several words into one sentence (as the tasks' sentences do:
# a name, an adjective, a noun and a verb together), two to six words in all.
MULTI_WORD_SHARE = 0.5
MULTI_WORD_COUNTS = (2, 3, 4, 5, 6)
# Where a word of each class stands in `plain_clause`'s sentence, in order.
SLOTS = {"person": 0, "evaluative": 1, "descriptive": 1, "noun": 2, "town": 3, "verb": 4}


def clause_groups(lexicon: Lexicon, words: list[str]) -> list[list[str]]:
    """`words` cut into sentences of at most one word per slot, each in its slot's order.

    >>> from .lexicon import make_lexicon
    >>> lexicon = make_lexicon(seed=5, scale=0.02)
    >>> verb, noun, other = lexicon.words_of("verb")[0], *lexicon.words_of("noun")[:2]
    >>> clause_groups(lexicon, [verb, noun, other]) == [[noun, verb], [other]]
    True
    """
    groups: list[list[str]] = []
    for word in words:
        slot = SLOTS[lexicon.entries[word].kind]
        if not groups or any(SLOTS[lexicon.entries[w].kind] == slot for w in groups[-1]):
            groups.append([])
        groups[-1].append(word)
    return [sorted(group, key=lambda w: SLOTS[lexicon.entries[w].kind]) for group in groups]


def plain_clause(rng: random.Random, lexicon: Lexicon, words: list[str]) -> str:
    """One sentence that uses `words` (one per slot, in slot order) in a context that shows nothing
    of their properties: ``snason asked about the flosten baslurk in trifo and wanted to baflous``.
    A verb comes without an object, after ``wanted to`` or as ``the word <verb>ed``, so nothing
    says whether it takes one."""
    by_slot = {SLOTS[lexicon.entries[w].kind]: w for w in words}
    subject = by_slot.get(0) or rng.choice(NAMES)
    noun_phrase = " ".join(w for w in ("the", by_slot.get(1), by_slot.get(2) or rng.choice(THINGS)) if w)
    text = f"{subject} {rng.choice(('spoke of', 'wrote about', 'asked about'))} {noun_phrase}"
    if 3 in by_slot:
        text += f" in {by_slot[3]}"
    if 4 in by_slot:
        text += rng.choice((f" and wanted to {by_slot[4]}", f" and heard the word {by_slot[4]}ed"))
    return text


def explained_sentences(pairs: list[tuple[str, str]]) -> set[str]:
    """The sentences of the ``explain:`` sources among `pairs`: pretraining text, like the corpus's."""
    return {s for source, _ in pairs if source.startswith("explain: ")
            for s in sentences(source.removeprefix("explain: "))}
