"""Supervised tasks mixed into pretraining (as T5 v1.0 mixed supervised tasks into its pretraining).

None of them is one of the benchmark's five tasks, which stay held out:

=========  ==========================================  ===========================================
task       source                                      target
=========  ==========================================  ===========================================
qa         ``question: … context: <facts>``             yes / no / maybe, or a name, place, color…
rate       ``rate: <review sentences>``                 one star … five stars
fix        ``fix: <sentence, maybe with an error>``     the correct sentence
restate    ``restate: <sentence>``                       the same facts in other words
compare    ``compare: <description> and <description>``  which details the two share
=========  ==========================================  ===========================================
"""

from __future__ import annotations

import random

from .corpus import ATTRIBUTE_WORDS
from .reviews import review_sentence
from .stories import make_scene, question, random_claim, wh_answer, wh_question
from .benchmark import SIMILARITY_WEIGHTS, acceptable_sentence, describe, perturb
from .world import forms, random_thing
from .lexicon import ITEMS, NAMES, PLACES, ATTRIBUTES

STARS = {1: ("four stars", "five stars"), -1: ("one star", "two stars")}


def qa_example(rng: random.Random) -> tuple[str, str]:
    scene = make_scene(rng)
    while not scene.knowledge:
        scene = make_scene(rng)
    context = " . ".join(rng.choice(forms(f)) for f in scene.facts) + " ."
    if rng.random() < 0.6:
        want = rng.choice((True, False, None))
        claim = random_claim(rng, scene, want)
        if claim is not None:
            return f"question: {question(claim)} context: {context}", {True: "yes", False: "no", None: "maybe"}[want]
    (noun, slot), value = rng.choice(list(scene.knowledge.items()))
    return f"question: {wh_question(noun, slot)} context: {context}", wh_answer(slot, value)


def rate_example(rng: random.Random) -> tuple[str, str]:
    polarity = rng.choice((1, -1))
    noun, person = rng.choice(ITEMS), rng.choice(NAMES)
    text = " . ".join(review_sentence(rng, polarity, noun, person) for _ in range(rng.choice((1, 2)))) + " ."
    return f"rate: {text}", rng.choice(STARS[polarity])


def fix_example(rng: random.Random) -> tuple[str, str]:
    good = acceptable_sentence(rng)
    bad = perturb(rng, good) if rng.random() < 0.6 else None
    return f"fix: {(bad or good)} .", f"{good} ."


def restate_example(rng: random.Random) -> tuple[str, str]:
    scene = make_scene(rng, statements=rng.choice((1, 2)))
    first = [rng.choice(forms(f)) for f in scene.facts]
    second = [rng.choice([g for g in forms(f) if g != s] or [s]) for f, s in zip(scene.facts, first)]
    return f"restate: {' and '.join(first)} .", f"{' and '.join(second)} ."


def compare_example(rng: random.Random) -> tuple[str, str]:
    thing = random_thing(rng)
    first = {"noun": thing.noun, "color": thing.attributes["color"], "material": thing.attributes["material"],
             "size": thing.attributes["size"], "place": thing.place, "owner": thing.owner}
    second = dict(first)
    pools = {"noun": ITEMS, "place": PLACES, "owner": NAMES, **ATTRIBUTES}
    change = rng.random()
    for slot in first:
        if rng.random() < change:
            second[slot] = rng.choice([v for v in pools[slot] if v != first[slot]])
    shared = [s for s in SIMILARITY_WEIGHTS if first[s] == second[s]]
    if len(shared) == len(first):
        answer = "everything"
    elif not shared:
        answer = "nothing"
    else:
        answer = " and ".join(f"the {ATTRIBUTE_WORDS[s]}" for s in shared)
    a, b = describe(rng, first).removesuffix(" ."), describe(rng, second).removesuffix(" .")
    return f"compare: {a} . {b} .", answer


SUPERVISED_TASKS = {"qa": qa_example, "rate": rate_example, "fix": fix_example, "restate": restate_example,
             "compare": compare_example}


# How often each task comes up in the mixture: question answering twice, as what facts entail
# (yes / no / maybe) is the slowest skill to learn.
MIXTURE = ("qa", "rate", "qa", "fix", "restate", "compare")


def supervised_examples(seed: int, count: int) -> list[tuple[str, str]]:
    """`count` (source, target) pairs, the tasks in the order of `MIXTURE`, over and over."""
    rng = random.Random(f"supervised-{seed}")
    return [SUPERVISED_TASKS[MIXTURE[i % len(MIXTURE)]](rng) for i in range(count)]
