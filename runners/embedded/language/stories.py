"""Scenes: a few people and things, facts stated about them, and what follows from the facts.

A scene's `knowledge` maps (noun, slot) to a value (slots: color, size, material, age, place,
owner) and holds the comparisons it states. A claim is ("slot", noun, slot, value) or
("cmp", noun_a, noun_b, pair, more); `truth(claim)` is True, False or None (not stated).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .lexicon import ATTRIBUTES, PLACES, THING_COMPARISONS
from .world import Thing, cast, forms, negated_forms

SLOTS = ("color", "size", "material", "age", "place", "owner")


@dataclass
class Scene:
    people: list[str]
    things: list[Thing]
    facts: list[tuple] = field(default_factory=list)         # in the order stated
    knowledge: dict[tuple[str, str], str] = field(default_factory=dict)
    comparisons: set[tuple[str, str, int]] = field(default_factory=set)  # (more, less, pair index)
    lent: dict[str, str] = field(default_factory=dict)      # noun -> borrower

    def thing(self, noun: str) -> Thing:
        return next(t for t in self.things if t.noun == noun)

    def truth(self, claim: tuple) -> bool | None:
        if claim[0] == "slot":
            _, noun, slot, value = claim
            known = self.knowledge.get((noun, slot))
            return None if known is None else known == value
        _, a, b, pair, more = claim
        if (a, b, pair) in self.comparisons:
            return more
        if (b, a, pair) in self.comparisons:
            return not more
        return None


def np(noun: str) -> str:
    return f"the {noun}"


def claim_fact(claim: tuple) -> tuple:
    """The fact tuple that states a claim (for `world.forms`)."""
    if claim[0] == "slot":
        _, noun, slot, value = claim
        if slot == "place":
            return ("place", np(noun), value)
        if slot == "owner":
            return ("owner", np(noun), value)
        return ("attr", np(noun), slot, value)
    _, a, b, pair, more = claim
    return ("cmp", np(a), np(b), THING_COMPARISONS[pair], more)


def state(claim: tuple, rng: random.Random, negated: bool = False) -> str:
    fact = claim_fact(claim)
    return rng.choice(negated_forms(fact) if negated else forms(fact))


def question(claim: tuple) -> str:
    """A yes/no question asking whether the claim holds."""
    if claim[0] == "slot":
        _, noun, slot, value = claim
        if slot == "place":
            return f"is the {noun} in the {value} ?"
        if slot == "owner":
            return f"does {value} own the {noun} ?"
        return f"is the {noun} {value} ?"
    _, a, b, pair, more = claim
    return f"is the {a} {THING_COMPARISONS[pair][0 if more else 1]} than the {b} ?"


def wh_question(noun: str, slot: str) -> str:
    return {"color": f"what color is the {noun} ?", "place": f"where is the {noun} ?",
            "owner": f"who owns the {noun} ?", "size": f"how big is the {noun} ?",
            "material": f"what is the {noun} made of ?", "age": f"is the {noun} old or new ?"}[slot]


def wh_answer(slot: str, value: str) -> str:
    if slot == "place":
        return f"in the {value}"
    if slot == "material":
        from .world import MATERIAL_NOUNS
        return MATERIAL_NOUNS[value]
    return value


def other_value(rng: random.Random, slot: str, value: str, people: list[str]) -> str:
    choices = people if slot == "owner" else PLACES if slot == "place" else ATTRIBUTES[slot]
    return rng.choice([c for c in choices if c != value])


def make_scene(rng: random.Random, people: int | None = None, things: int | None = None,
               statements: int | None = None) -> Scene:
    """A scene with 2-3 people and 2-3 things and 2-5 stated facts or events, in order."""
    names, items = cast(rng, people or rng.choice((2, 3)), things or rng.choice((2, 3)))
    scene = Scene(names, items)
    for _ in range(statements or rng.choice((2, 3, 4, 5))):
        thing = rng.choice(items)
        noun = thing.noun
        kind = rng.choices(("attr", "place", "owner", "transfer", "paint", "move", "cmp"),
                           weights=(4, 2, 2, 3, 1, 1, 2))[0]
        if kind == "attr":
            slot = rng.choice(("color", "size", "material", "age"))
            value = thing.attributes[slot] if (noun, slot) not in scene.knowledge else scene.knowledge[(noun, slot)]
            scene.facts.append(("attr", np(noun), slot, value))
            scene.knowledge[(noun, slot)] = value
        elif kind == "place":
            value = scene.knowledge.get((noun, "place"), thing.place)
            scene.facts.append(("place", np(noun), value))
            scene.knowledge[(noun, "place")] = value
        elif kind == "owner":
            value = scene.knowledge.get((noun, "owner"), thing.owner)
            scene.facts.append(("owner", np(noun), value))
            scene.knowledge[(noun, "owner")] = value
        elif kind == "transfer":
            giver = scene.knowledge.get((noun, "owner"), thing.owner)
            receiver = rng.choice([p for p in names if p != giver])
            event = rng.choices(("sell", "give", "lend"), weights=(3, 2, 1))[0]
            if noun in scene.lent:
                continue
            scene.facts.append((event, giver, receiver, np(noun)))
            if event == "lend":
                scene.knowledge[(noun, "owner")] = giver
                scene.lent[noun] = receiver
            else:
                scene.knowledge[(noun, "owner")] = receiver
        elif kind == "paint":
            agent = rng.choice(names)
            value = other_value(rng, "color", scene.knowledge.get((noun, "color"), thing.attributes["color"]), names)
            scene.facts.append(("paint", agent, np(noun), value))
            scene.knowledge[(noun, "color")] = value
        elif kind == "move":
            agent = rng.choice(names)
            value = other_value(rng, "place", scene.knowledge.get((noun, "place"), thing.place), names)
            scene.facts.append(("move", agent, np(noun), value))
            scene.knowledge[(noun, "place")] = value
        else:
            others = [t for t in items if t is not thing]
            other = rng.choice(others)
            pair = rng.randrange(len(THING_COMPARISONS))
            if any((x, y, pair) in scene.comparisons for x, y in ((noun, other.noun), (other.noun, noun))):
                continue
            more = rng.random() < 0.5
            a, b = (noun, other.noun) if more else (other.noun, noun)
            scene.comparisons.add((a, b, pair))
            scene.facts.append(("cmp", np(noun), np(other.noun), THING_COMPARISONS[pair], more))
    return scene


def random_claim(rng: random.Random, scene: Scene, want: bool | None) -> tuple | None:
    """A claim about the scene whose truth is `want` (True, False, or None = not stated)."""
    for _ in range(50):
        if rng.random() < 0.2 and len(scene.things) > 1:
            a, b = rng.sample([t.noun for t in scene.things], 2)
            claim = ("cmp", a, b, rng.randrange(len(THING_COMPARISONS)), rng.random() < 0.5)
        else:
            noun = rng.choice(scene.things).noun
            slot = rng.choice(SLOTS)
            known = scene.knowledge.get((noun, slot))
            if want is True and known is not None:
                value = known
            elif want is False and known is not None:
                value = other_value(rng, slot, known, scene.people)
            else:
                value = other_value(rng, slot, "", scene.people)
            claim = ("slot", noun, slot, value)
        if scene.truth(claim) is want:
            return claim
    return None


def story_document(rng: random.Random) -> str:
    """Facts of a scene, then what follows: restatements, consequences, questions and answers."""
    scene = make_scene(rng)
    sentences = [rng.choice(forms(fact)) for fact in scene.facts]
    for _ in range(rng.choice((1, 2, 3))):
        kind = rng.choice(("restate", "consequence", "yesno", "wh", "negation"))
        if kind == "restate" and scene.facts:
            fact = rng.choice(scene.facts)
            lead = rng.choice(("in other words ,", "put differently ,", "that is ,"))
            sentences.append(f"{lead} {rng.choice(forms(fact))}")
        elif kind == "consequence":
            claim = random_claim(rng, scene, True)
            if claim:
                sentences.append(f"{rng.choice(('so', 'this means', 'so we know'))} {state(claim, rng)}")
        elif kind == "negation":
            claim = random_claim(rng, scene, False)
            if claim:
                sentences.append(f"so {state(claim, rng, negated=True)}")
        elif kind == "yesno":
            want = rng.choice((True, False, None))
            claim = random_claim(rng, scene, want)
            if claim:
                answer = {True: "yes", False: "no", None: "maybe"}[want]
                sentences.append(f"question : {question(claim)} answer : {answer}")
        else:
            known = list(scene.knowledge.items())
            if known:
                (noun, slot), value = rng.choice(known)
                sentences.append(f"question : {wh_question(noun, slot)} answer : {wh_answer(slot, value)}")
    return " . ".join(sentences) + " ."
