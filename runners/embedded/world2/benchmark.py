"""The five tasks of world 2, whose validation and test examples need words their training split never has.

For each task every word class is split at random into train / validation / test parts
(`held_out_parts`; a noun and its synonym stay together); a row of a split draws its *designated*
words — the invented words whose property decides the label — from that split's part only. So
what a test row needs (the polarity of "brelish", that "drelk" takes an object, that a tarvel is a
fruit) is nowhere in the training split: only the corpus states it. Fillers (English names,
things, places) are shared.

==========  =====================================  =====================================  =================
task        input                                   label decided by                       target
==========  =====================================  =====================================  =================
sst2        a review sentence, maybe negated        the evaluative word's polarity         negative / positive
cola        a sentence, maybe ungrammatical         whether the verb takes an object; which no / yes
                                                    word is the adjective and which the noun
mrpc        two sentences, 1-2 words replaced       whether the new words are synonyms      no / yes
mnli        two facts + a claim about one person    the noun's category, the person's      yes / maybe / no
                                                    profession or town, synonymy
stsb        two sentences, every word replaced      how many replacements are synonyms     0.0 … 5.0
==========  =====================================  =====================================  =================

`make_rows` returns each row with its designated words (the generator's bookkeeping the tests check).
Each row also carries a ``rationale``: pretraining's ``explain:`` answer for the words that decide
its label (`explained`), which the runner's tasks have the model write before the label
(``Task.rationale_column``): ``good ; positive``. The words of a validation or test rationale are
the held-out words' properties, which only the corpus states; the training rows teach the format.

>>> from .lexicon import make_lexicon
>>> lexicon = make_lexicon(seed=1, scale=0.05)
>>> rows = make_rows("sst2", lexicon, seed=1, sizes={"train": 4, "validation": 2, "test": 2})
>>> [(split, len(made)) for split, made in rows.items()]
[('train', 4), ('validation', 2), ('test', 2)]
>>> row, words = rows["test"][0]
>>> sorted(row), all(w in row["sentence"].split() for w in words)
(['label', 'rationale', 'sentence'], True)
>>> row["rationale"] == lexicon.entries[words[0]].gloss   # what the corpus says of the deciding word
True
"""

from __future__ import annotations

import random
from collections.abc import Callable

from .corpus import article, sentences
from .lexicon import CATEGORIES, NAMES, PLACES, PROFESSIONS, THINGS, Lexicon
from .supervised import property_phrase

Parts = dict[str, list[str]]  # word class -> the words of one split's part
Row = dict
Made = tuple[Row, tuple[str, ...]]  # a row and its designated words
RATIONALE = "rationale"  # the column of what the corpus says of the words that decide a row's label


def explained(lexicon: Lexicon, text: str, words: tuple[str, ...] | list[str]) -> str:
    """A row's rationale: pretraining's ``explain:`` answer for its designated `words` (those whose
    property decides the label), each once, in the order they first appear in `text` (a verb as
    ``<verb>ed``; a pair task's text is what the runner's source shows first, then the rest).

    >>> from .lexicon import make_lexicon
    >>> lexicon = make_lexicon(seed=1, scale=0.05)
    >>> verb, noun = lexicon.words_of("verb")[0], lexicon.words_of("noun")[0]
    >>> gloss, category = lexicon.entries[verb].gloss, lexicon.entries[noun].category
    >>> explained(lexicon, f"ben {verb}ed the {noun} .", (noun, verb)) == f"{gloss} ; {category}"
    True
    """
    tokens = text.split()
    position = {word: next(i for i, token in enumerate(tokens) if token in (word, word + "ed")) for word in words}
    return " ; ".join(property_phrase(lexicon, word) for word in sorted(dict.fromkeys(words), key=position.get))


def held_out_parts(lexicon: Lexicon, task: str, seed: int, shares: dict[str, float]) -> dict[str, Parts]:
    """``{split: {word class: words}}``: each class cut at random into the splits' shares, per task."""
    rng = random.Random(f"world2-parts-{task}-{seed}")
    parts: dict[str, Parts] = {split: {} for split in shares}
    for kind in ("evaluative", "descriptive", "verb", "noun", "person"):
        strata: dict[object, list[tuple[str, ...]]] = {}
        for unit in _synonym_units(lexicon, kind):  # each polarity / transitivity cut on its own
            entry = lexicon.entries[unit[0]]
            strata.setdefault((entry.polarity, entry.transitive), []).append(unit)
        for units in strata.values():
            rng.shuffle(units)
            for split, chosen in zip(shares, _cut(len(units), list(shares.values()))):
                parts[split].setdefault(kind, []).extend(w for unit in units[chosen] for w in unit)
    return parts


def _cut(count: int, shares: list[float]) -> list[slice]:
    """`count` items cut into consecutive slices by `shares`, each slice at least one item when possible.

    >>> _cut(10, [0.7, 0.15, 0.15])
    [slice(0, 7, None), slice(7, 9, None), slice(9, 10, None)]
    """
    sizes = [max(1 if count >= len(shares) else 0, round(share * count)) for share in shares[:-1]]
    while sum(sizes) > count - (1 if count >= len(shares) else 0):
        sizes[sizes.index(max(sizes))] -= 1
    bounds = [0]
    for size in sizes:
        bounds.append(bounds[-1] + size)
    return [slice(a, b) for a, b in zip(bounds, bounds[1:] + [count])]


def _synonym_units(lexicon: Lexicon, kind: str) -> list[tuple[str, ...]]:
    """The words of a class in units that stay in one split: a noun with its synonym, two or three
    words of one gloss (so every word has a synonym in its split), a person alone."""
    words = lexicon.words_of(kind)
    if kind == "person":
        return [(w,) for w in words]
    if kind == "noun":
        return [(w, lexicon.entries[w].synonym) for w in words if w < lexicon.entries[w].synonym]
    units = []
    for gloss in dict.fromkeys(lexicon.entries[w].gloss for w in words):
        same = lexicon.words_meaning(gloss)
        pairs = [tuple(same[i:i + 2]) for i in range(0, len(same) - len(same) % 2, 2)]
        if len(same) % 2:
            pairs[-1] += (same[-1],)
        units += pairs
    return units


def _synonym(rng: random.Random, lexicon: Lexicon, word: str, pool: list[str]) -> str | None:
    """Another word of `pool` that means what `word` means (None if the pool has none)."""
    same = [w for w in pool if w != word and lexicon.same_meaning(w, word)]
    return rng.choice(same) if same else None


def _different(rng: random.Random, lexicon: Lexicon, word: str, pool: list[str]) -> str:
    """A word of `pool` that means something else (for a verb: one that also takes an object)."""
    entry = lexicon.entries[word]
    other = [w for w in pool if not lexicon.same_meaning(w, word)
             and (entry.kind != "verb" or lexicon.entries[w].transitive == entry.transitive)]
    if entry.kind == "descriptive" and rng.random() < 0.5:  # often the opposite
        opposite = lexicon.opposite_gloss(entry.gloss)
        other = [w for w in other if lexicon.entries[w].gloss == opposite] or other
    return rng.choice(other)


# -- sst2 -----------------------------------------------------------------------------------

def sst2_row(rng: random.Random, lexicon: Lexicon, parts: Parts, label: int) -> Made:
    negated = rng.random() < 0.3
    polarity = (1 if label == 1 else -1) * (-1 if negated else 1)
    word = rng.choice([w for w in parts["evaluative"] if lexicon.entries[w].polarity == polarity])
    thing, name, verb = rng.choice(THINGS), rng.choice(NAMES), rng.choice(("was", "seemed", "looked", "felt"))
    adverb = rng.choice(("", "", "very ", "really ", "quite "))
    core = f"{'not ' if negated else ''}{adverb}{word}"
    sentence = rng.choice((f"the {thing} {verb} {core}", f"{name} thought the {thing} {verb} {core}",
                           f"to {name} , the {thing} {verb} {core}", f"the {thing} that {name} chose {verb} {core}"))
    return {"sentence": sentence + " .", "label": label, RATIONALE: explained(lexicon, sentence, (word,))}, (word,)


# -- cola -----------------------------------------------------------------------------------

def cola_row(rng: random.Random, lexicon: Lexicon, parts: Parts, label: int) -> Made:
    """Acceptable: a transitive verb with its object, an intransitive one without; unacceptable: a
    transitive verb without object, an intransitive one with one, or the adjective after the noun.
    An object is there in half the rows of either label, so its presence does not tell the label."""
    name, place = rng.choice(NAMES), rng.choice(PLACES)
    error = None if label == 1 else rng.choice(("no object", "no object", "object", "order"))
    with_object = (rng.random() < 0.5) if label == 1 else error != "no object"
    transitive = with_object if error in (None, "order") else not with_object
    verb = rng.choice([w for w in parts["verb"] if lexicon.entries[w].transitive == transitive])
    words: tuple[str, ...] = (verb,)
    sentence = f"{name} {verb}ed"
    if with_object:
        adjective, noun = rng.choice(parts["descriptive"]), rng.choice(parts["noun"])
        words += (adjective, noun)
        sentence += f" the {noun} {adjective}" if error == "order" else f" the {adjective} {noun}"
    if rng.random() < 0.5:
        sentence += f" in the {place}"
    return {"sentence": sentence + " .", "label": label, RATIONALE: explained(lexicon, sentence, words)}, words


# -- mrpc and stsb: one event said twice ---------------------------------------------------

def _event(verb: str, adjective: str, noun: str, name: str, passive: bool) -> str:
    return f"the {adjective} {noun} was {verb}ed by {name}" if passive else f"{name} {verb}ed the {adjective} {noun}"


def _transitive_slots(rng: random.Random, lexicon: Lexicon, parts: Parts) -> dict[str, str]:
    verbs = [w for w in parts["verb"] if lexicon.entries[w].transitive]
    return {"verb": rng.choice(verbs), "adjective": rng.choice(parts["descriptive"]), "noun": rng.choice(parts["noun"])}


POOLS = {"verb": "verb", "adjective": "descriptive", "noun": "noun"}


def mrpc_row(rng: random.Random, lexicon: Lexicon, parts: Parts, label: int) -> Made:
    """One or two words replaced: all by synonyms (1), or at least one by a word of other meaning (0)."""
    while True:
        first = _transitive_slots(rng, lexicon, parts)
        changed = rng.sample(list(first), rng.choice((1, 2)))
        wrong = set() if label == 1 else {rng.choice(changed)}
        second = dict(first)
        for slot in changed:
            pool = parts[POOLS[slot]]
            second[slot] = _different(rng, lexicon, first[slot], pool) if slot in wrong else \
                _synonym(rng, lexicon, first[slot], pool)
        if None in second.values():
            continue
        name = rng.choice(NAMES)
        texts = [_event(**slots, name=name, passive=rng.random() < 0.5) for slots in (first, second)]
        words = tuple(dict.fromkeys([*first.values(), *second.values()]))
        return {"sentence1": texts[0] + " .", "sentence2": texts[1] + " .", "label": label,
                RATIONALE: explained(lexicon, " . ".join(texts), words)}, words


# Weight of a slot whose replacement means the same; a noun of the same category counts half.
SIMILARITY_WEIGHTS = {"noun": 2.0, "verb": 1.5, "adjective": 1.5}


def stsb_row(rng: random.Random, lexicon: Lexicon, parts: Parts, bucket: int) -> Made:
    """Every word replaced, each by a synonym with probability bucket / 5; the score sums the
    weights of the slots that kept their meaning."""
    while True:
        first = _transitive_slots(rng, lexicon, parts)
        second, score = {}, 0.0
        for slot, word in first.items():
            pool = parts[POOLS[slot]]
            keep = rng.random() < bucket / 5
            second[slot] = _synonym(rng, lexicon, word, pool) if keep else _different(rng, lexicon, word, pool)
            if keep:
                score += SIMILARITY_WEIGHTS[slot]
            elif slot == "noun" and lexicon.entries[second[slot] or word].category == lexicon.entries[word].category:
                score += SIMILARITY_WEIGHTS[slot] / 2
        if None in second.values():
            continue
        name = rng.choice(NAMES)
        texts = [_event(**slots, name=name, passive=rng.random() < 0.5) for slots in (first, second)]
        words = tuple(dict.fromkeys([*first.values(), *second.values()]))
        return {"sentence1": texts[0] + " .", "sentence2": texts[1] + " .", "label": score,
                RATIONALE: explained(lexicon, " . ".join(texts), words)}, words


# -- mnli -----------------------------------------------------------------------------------

NLI_LABELS = ("yes", "maybe", "no")   # entailment, neutral, contradiction


def _thing_claim(rng: random.Random, lexicon: Lexicon, noun: str, pool: list[str], true: bool) -> str:
    """What the thing is, said by category or by a noun: true of `noun` or not."""
    entry = lexicon.entries[noun]
    if rng.random() < 0.5:
        category = entry.category if true else rng.choice([c for c in CATEGORIES if c != entry.category])
        return f"{article(category)} {category}"
    other = _synonym(rng, lexicon, noun, pool) if true else _different(rng, lexicon, noun, pool)
    return f"{article(other)} {other}"


def _person_claim(rng: random.Random, lexicon: Lexicon, person: str, pool: list[str], true: bool) -> str:
    """Who the visitor was, by profession or town: true of `person` or not."""
    entry = lexicon.entries[person]
    if rng.random() < 0.5:
        profession = entry.profession if true else rng.choice([p for p in PROFESSIONS if p != entry.profession])
        return f"{article(profession)} {profession}"
    towns = sorted({lexicon.entries[w].town for w in lexicon.words_of("person")})
    return "from " + (entry.town if true else rng.choice([t for t in towns if t != entry.town]))


def nli_row(rng: random.Random, lexicon: Lexicon, parts: Parts, label: int) -> Made:
    """Premise: what two people have (things) or who visited them (persons). Hypothesis: the same of
    one of them (yes if it follows, no if it cannot be) or of a third person (maybe)."""
    first, second, third = rng.sample(NAMES, 3)
    things = rng.random() < 0.5
    kind = "noun" if things else "person"
    held = rng.sample(parts[kind], 2)
    if things and lexicon.same_meaning(*held):
        held = [held[0], _different(rng, lexicon, held[0], parts[kind])]
    say = (lambda who, what: f"the thing in {who} 's box is {what}") if things else \
        (lambda who, what: f"the visitor at {who} 's house was {what}")
    premise = " . ".join(say(who, (f"{article(w)} {w}" if things else w)) for who, w in zip((first, second), held))
    about = rng.randrange(2)
    subject = third if label == 1 else (first, second)[about]
    claim = (_thing_claim if things else _person_claim)(rng, lexicon, held[about], parts[kind], label != 2)
    words = tuple(held) + tuple(w for w in claim.split() if w in lexicon.entries and lexicon.entries[w].kind != "town")
    hypothesis = say(subject, claim)
    return {"premise": premise + " .", "hypothesis": hypothesis + " .", "label": label,
            RATIONALE: explained(lexicon, f"{hypothesis} . {premise}", words)}, words


ROW_MAKERS: dict[str, tuple[Callable[..., Made], int]] = {
    "sst2": (sst2_row, 2), "cola": (cola_row, 2), "mrpc": (mrpc_row, 2), "mnli": (nli_row, 3), "stsb": (stsb_row, 6)}
TASK_FIELDS = {"sst2": ("sst2", ("sentence",)), "cola": ("cola", ("sentence",)),
               "mrpc": ("mrpc", ("sentence1", "sentence2")), "mnli": ("mnli", ("hypothesis", "premise")),
               "stsb": ("stsb", ("sentence1", "sentence2"))}
LABELS = {"sst2": ("negative", "positive"), "cola": ("no", "yes"), "mrpc": ("no", "yes"), "mnli": NLI_LABELS,
          "stsb": None}


def make_rows(task: str, lexicon: Lexicon, seed: int, sizes: dict[str, int],
              exclude: frozenset[str] | set[str] = frozenset(),
              shares: dict[str, float] | None = None) -> dict[str, list[Made]]:
    """``{split: [(row, designated words), …]}``: distinct rows, labels (or score buckets) cycling
    for balance, each split's words from its own part, no sentence of a row in `exclude`."""
    shares = shares or {split: 1 / len(sizes) for split in sizes}
    parts = held_out_parts(lexicon, task, seed, shares)
    make, classes = ROW_MAKERS[task]
    rng = random.Random(f"world2-{task}-{seed}")
    made: dict[str, list[Made]] = {}
    seen: set[str] = set()
    for split, size in sizes.items():
        made[split] = []
        refused = 0
        while len(made[split]) < size:
            row, words = make(rng, lexicon, parts[split], len(made[split]) % classes)
            texts = [str(v) for k, v in row.items() if k not in ("label", RATIONALE)]
            key = " | ".join(texts)
            if key in seen or any(s in exclude for text in texts for s in sentences(text)):
                refused += 1
                if refused > 100 * size + 1000:
                    raise ValueError(f"{task}: cannot make {size} distinct {split} rows from "
                                     f"{len(lexicon.entries)} words; give a larger lexicon or fewer rows")
                continue
            seen.add(key)
            made[split].append((row, words))
    return made
