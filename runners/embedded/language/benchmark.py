"""The embedded benchmark: five tasks in the shape of GLUE, written in the embedded language.

==========  ==================================  =================================  ====================
task        like                                input                               target
==========  ==================================  =================================  ====================
sst2        SST-2, single-sentence sentiment    a review sentence                   negative / positive
cola        CoLA, acceptability (Matthews)      a sentence, half of them perturbed  no / yes
mrpc        MRPC, paraphrase (F1 + accuracy)    two sentences                       no / yes
nli         MNLI, entailment from facts         premise (facts) + hypothesis        yes / maybe / no
stsb        STS-B, graded similarity            two descriptions of things          0.0 … 5.0 (0.2 grid)
==========  ==================================  =================================  ====================
"""

from __future__ import annotations

import random

from .lexicon import ATTRIBUTE_ORDER, ATTRIBUTES, ITEMS, NAMES, PLACES
from .reviews import review_sentence
from .stories import make_scene, random_claim, state
from .world import MATERIAL_NOUNS, article, forms, negated_forms, random_thing, swapped

# -- sst2 ---------------------------------------------------------------------------------------

def sst2_row(rng: random.Random, label: int) -> dict:
    return {"sentence": review_sentence(rng, 1 if label == 1 else -1) + " .", "label": label}


# -- cola ---------------------------------------------------------------------------------------

WRONG_PREPOSITIONS = {" to ": " from ", " from ": " to ", " in the ": " of the ", " than ": " then "}
WRONG_VERB_FORMS = {" sold ": " sell ", " bought ": " buyed ", " gave ": " give ", " got ": " get ",
                    " lent ": " lended ", " borrowed ": " borrow ", " painted ": " paint ", " moved ": " move ",
                    " is ": " are ", " was ": " were ", " owns ": " own ", " belongs ": " belong ",
                    " did not ": " did not to ", " has ": " have "}


def acceptable_sentence(rng: random.Random) -> str:
    """A grammatical sentence of one or two clauses: facts, events or a review."""
    if rng.random() < 0.3:
        return review_sentence(rng, rng.choice((1, -1)))
    scene = make_scene(rng, statements=rng.choice((1, 2)))
    clauses = [rng.choice(negated_forms(f) if rng.random() < 0.15 else forms(f)) for f in scene.facts]
    return rng.choice((" and ", " but ", " , and ")).join(clauses) if len(clauses) > 1 else clauses[0]


def perturb(rng: random.Random, sentence: str) -> str | None:
    """One grammatical error: swapped neighbours, wrong preposition or verb form, dropped or doubled word."""
    words = sentence.split()
    kind = rng.choice(("swap", "preposition", "verb", "drop", "double"))
    if kind == "swap":
        i = rng.randrange(len(words) - 1)
        if words[i] == words[i + 1]:
            return None
        words[i], words[i + 1] = words[i + 1], words[i]
        return " ".join(words)
    if kind in ("preposition", "verb"):
        table = WRONG_PREPOSITIONS if kind == "preposition" else WRONG_VERB_FORMS
        padded = f" {sentence} "
        found = [key for key in table if key in padded]
        if not found:
            return None
        key = rng.choice(found)
        return padded.replace(key, table[key], 1).strip()
    if kind == "drop":
        candidates = [i for i, w in enumerate(words) if w in ("the", "is", "was", "to", "from", "by", "of")]
        if not candidates:
            return None
        del words[rng.choice(candidates)]
        return " ".join(words)
    i = rng.randrange(len(words))
    words.insert(i, words[i])
    return " ".join(words)


def cola_row(rng: random.Random, label: int) -> dict:
    while True:
        sentence = acceptable_sentence(rng)
        if label == 1:
            return {"sentence": sentence + " .", "label": 1}
        bad = perturb(rng, sentence)
        if bad and bad != sentence:
            return {"sentence": bad + " .", "label": 0}


# -- mrpc ---------------------------------------------------------------------------------------

def mrpc_row(rng: random.Random, label: int) -> dict:
    """Two statements of one or two facts: the same facts in other words (1), or a changed meaning (0)."""
    while True:
        scene = make_scene(rng, statements=rng.choice((1, 1, 2)))
        facts = scene.facts
        # Some facts are denied in both sentences, so "not" alone does not tell the label.
        denied = [rng.random() < 0.25 for _ in facts]
        sayings = [negated_forms(f) if d else forms(f) for f, d in zip(facts, denied)]
        first = [rng.choice(options) for options in sayings]
        if label == 1:
            second = [rng.choice([g for g in options if g != s] or [s]) for options, s in zip(sayings, first)]
            if second == first:
                continue
        else:
            index = rng.randrange(len(facts))
            changed = rng.choice(forms(facts[index])) if denied[index] else change_fact(rng, facts[index], scene)
            if changed is None:
                continue
            second = [rng.choice(options) if i != index else changed for i, options in enumerate(sayings)]
        join = lambda parts: " and ".join(parts) + " ."  # noqa: E731
        return {"sentence1": join(first), "sentence2": join(second), "label": label}


def change_fact(rng: random.Random, fact: tuple, scene) -> str | None:
    """A sentence whose meaning differs from `fact`: roles swapped, a value changed, or negated."""
    options = []
    other = swapped(fact)
    if other is not None:
        options.append(rng.choice(forms(other)))
    kind = fact[0]
    if kind == "attr":
        value = rng.choice([v for v in ATTRIBUTES[fact[2]] if v != fact[3]])
        options.append(rng.choice(forms(("attr", fact[1], fact[2], value))))
    elif kind in ("place", "owner"):
        pool = PLACES if kind == "place" else NAMES
        options.append(rng.choice(forms((kind, fact[1], rng.choice([v for v in pool if v != fact[2]])))))
    elif kind in ("sell", "give", "lend"):
        verb = rng.choice([k for k in ("sell", "give", "lend") if k != kind])
        options.append(rng.choice(forms((verb, *fact[1:]))))
    elif kind == "paint":
        value = rng.choice([v for v in ATTRIBUTES["color"] if v != fact[3]])
        options.append(rng.choice(forms(("paint", fact[1], fact[2], value))))
    if not options or rng.random() < 0.3:
        options.append(rng.choice(negated_forms(fact)))
    return rng.choice(options)


# -- nli ----------------------------------------------------------------------------------------

NLI_LABELS = ("yes", "maybe", "no")   # entailment, neutral, contradiction


def nli_row(rng: random.Random, label: int) -> dict:
    """Premise: two to five facts of a scene. Hypothesis: a claim that follows (yes), is not stated
    (maybe) or is contradicted (no), sometimes phrased as a negation."""
    while True:
        scene = make_scene(rng, statements=rng.choice((2, 3, 4, 5)))
        negated = rng.random() < 0.25 and label != 1
        want = {0: True, 1: None, 2: False}[label]
        claim = random_claim(rng, scene, (not want) if negated else want)
        if claim is None:
            continue
        stated = [rng.choice(forms(f)) for f in scene.facts]
        hypothesis = state(claim, rng, negated=negated)
        for _ in range(5):  # a restated fact is said in other words, not copied
            if hypothesis not in stated:
                break
            hypothesis = state(claim, rng, negated=negated)
        return {"premise": " . ".join(stated) + " .", "hypothesis": hypothesis + " .", "label": label}


# -- stsb ---------------------------------------------------------------------------------------

SIMILARITY_WEIGHTS = {"noun": 1.4, "color": 1.0, "material": 0.8, "size": 0.6, "place": 0.6, "owner": 0.6}


def describe(rng: random.Random, slots: dict[str, str]) -> str:
    adjectives = " ".join(slots[s] for s in ATTRIBUTE_ORDER if s in slots and s != "age")
    noun, place, owner = slots["noun"], slots["place"], slots["owner"]
    return rng.choice((
        f"the {adjectives} {noun} in the {place} belongs to {owner}",
        f"{owner} owns the {adjectives} {noun} that is in the {place}",
        f"in the {place} there is {article(adjectives)} {adjectives} {noun} that belongs to {owner}",
        f"{owner} 's {noun} is {slots['size']} , {slots['color']} and made of {MATERIAL_NOUNS[slots['material']]} and is kept in the {place}",
    )) + " ."


def stsb_row(rng: random.Random, bucket: int) -> dict:
    """Two descriptions; the score is the summed weight of the slots on which they agree."""
    thing = random_thing(rng)
    first = {"noun": thing.noun, "color": thing.attributes["color"], "material": thing.attributes["material"],
             "size": thing.attributes["size"], "place": thing.place, "owner": thing.owner}
    change = bucket / 5  # spread scores: each slot changes with this probability
    second = dict(first)
    pools = {"noun": ITEMS, "place": PLACES, "owner": NAMES, **ATTRIBUTES}
    for slot in first:
        if rng.random() < change:
            second[slot] = rng.choice([v for v in pools[slot] if v != first[slot]])
    score = round(sum(w for slot, w in SIMILARITY_WEIGHTS.items() if first[slot] == second[slot]), 1)
    return {"sentence1": describe(rng, first), "sentence2": describe(rng, second), "label": score}


ROW_MAKERS = {"sst2": (sst2_row, 2), "cola": (cola_row, 2), "mrpc": (mrpc_row, 2), "mnli": (nli_row, 3),
              "stsb": (stsb_row, 6)}
# How the finetune runner writes a row (T5's GLUE format "<prefix> <column>: <value> ...") and its labels.
TASK_FIELDS = {"sst2": ("sst2", ("sentence",)), "cola": ("cola", ("sentence",)),
               "mrpc": ("mrpc", ("sentence1", "sentence2")), "mnli": ("mnli", ("hypothesis", "premise")),
               "stsb": ("stsb", ("sentence1", "sentence2"))}
LABELS = {"sst2": ("negative", "positive"), "cola": ("no", "yes"), "mrpc": ("no", "yes"),
          "mnli": NLI_LABELS, "stsb": None}


def sentences(text: str) -> list[str]:
    """The sentences of a text, without their final " .": how the corpus is split for comparison."""
    return [s.strip().removesuffix(" .").strip() for s in text.split(" . ") if s.strip(" .")]


def make_rows(task: str, seed: int, count: int, exclude: set[str] = frozenset()) -> list[dict]:
    """`count` distinct rows of `task`, labels (or similarity buckets) cycling for balance; no row
    has a sentence in `exclude` (the corpus's sentences)."""
    make, classes = ROW_MAKERS[task]
    rng = random.Random(f"{task}-{seed}")
    rows, seen = [], set()
    while len(rows) < count:
        row = make(rng, len(rows) % classes)
        texts = [str(v) for k, v in row.items() if k != "label"]
        key = " | ".join(texts)
        # A one-sentence input must not be a corpus sentence; pair inputs are new as pairs.
        if key in seen or (len(texts) == 1 and any(s in exclude for s in sentences(texts[0]))):
            continue
        seen.add(key)
        rows.append(row)
    return rows
