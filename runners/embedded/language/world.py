"""Meanings and their sentences: a small world of people and things, facts about it, and every way
the language says each fact.

A fact is a tuple, e.g. ``("owner", thing, "mia")`` or ``("sell", "mia", "tom", thing)``;
`say(fact, rng)` picks one of its surface forms. All forms of a fact are paraphrases of each
other; a fact with a role swapped or a value changed is not.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .lexicon import (ATTRIBUTE_ORDER, ATTRIBUTES, ITEMS, NAMES, PERSON_COMPARISONS, PLACES,
                      THING_COMPARISONS)

MATERIAL_NOUNS = {"wooden": "wood", "metal": "metal", "plastic": "plastic", "glass": "glass",
                  "leather": "leather", "steel": "steel"}


@dataclass
class Thing:
    noun: str
    attributes: dict[str, str]
    place: str
    owner: str
    holder: str | None = None   # who has it when lent
    mentioned: set[str] = field(default_factory=set)

    def np(self, rng: random.Random, adjectives: int = 0) -> str:
        """ "the lamp", or with some of its adjectives: "the big red lamp"."""
        chosen = rng.sample(ATTRIBUTE_ORDER, adjectives) if adjectives else []
        words = [self.attributes[slot] for slot in ATTRIBUTE_ORDER if slot in chosen]
        return " ".join(["the", *words, self.noun])


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def random_thing(rng: random.Random, noun: str | None = None, people: list[str] | None = None) -> Thing:
    return Thing(noun or rng.choice(ITEMS), {slot: rng.choice(values) for slot, values in ATTRIBUTES.items()},
                 rng.choice(PLACES), rng.choice(people or NAMES))


def cast(rng: random.Random, people: int, things: int) -> tuple[list[str], list[Thing]]:
    names = rng.sample(NAMES, people)
    nouns = rng.sample(ITEMS, things)
    return names, [random_thing(rng, noun, names) for noun in nouns]


# -- surface forms ------------------------------------------------------------------------------

def attribute_forms(np: str, slot: str, value: str) -> list[str]:
    forms = [f"{np} is {value}"]
    if slot == "color":
        forms += [f"the color of {np} is {value}", f"{np} has a {value} color"]
    elif slot == "material":
        forms += [f"{np} is made of {MATERIAL_NOUNS[value]}"]
    else:
        forms += [f"{np} is {article(value)} {value} one"]
    return forms


def place_forms(np: str, place: str) -> list[str]:
    return [f"{np} is in the {place}", f"{np} is kept in the {place}", f"you can find {np} in the {place}"]


def owner_forms(np: str, person: str) -> list[str]:
    return [f"{person} owns {np}", f"{np} belongs to {person}", f"{np} is {person} 's"]


def transfer_forms(kind: str, giver: str, receiver: str, np: str) -> list[str]:
    if kind == "sell":
        return [f"{giver} sold {np} to {receiver}", f"{receiver} bought {np} from {giver}",
                f"{np} was sold to {receiver} by {giver}", f"{giver} sold {receiver} {np}"]
    if kind == "give":
        return [f"{giver} gave {np} to {receiver}", f"{giver} gave {receiver} {np}",
                f"{receiver} got {np} from {giver}", f"{np} was given to {receiver} by {giver}"]
    if kind == "lend":
        return [f"{giver} lent {np} to {receiver}", f"{giver} lent {receiver} {np}",
                f"{receiver} borrowed {np} from {giver}", f"{np} was lent to {receiver} by {giver}"]
    raise ValueError(kind)


def action_forms(kind: str, agent: str, np: str, value: str) -> list[str]:
    if kind == "paint":
        return [f"{agent} painted {np} {value}", f"{np} was painted {value} by {agent}"]
    if kind == "move":
        return [f"{agent} moved {np} to the {value}", f"{np} was moved to the {value} by {agent}",
                f"{agent} put {np} in the {value}"]
    raise ValueError(kind)


def comparison_forms(a: str, b: str, pair: tuple[str, str], more: bool) -> list[str]:
    word, converse = pair if more else pair[::-1]
    return [f"{a} is {word} than {b}", f"{b} is {converse} than {a}"]


def forms(fact: tuple) -> list[str]:
    """Every surface form of a fact (all paraphrases of each other)."""
    kind = fact[0]
    if kind == "attr":
        _, np, slot, value = fact
        return attribute_forms(np, slot, value)
    if kind == "place":
        return place_forms(fact[1], fact[2])
    if kind == "owner":
        return owner_forms(fact[1], fact[2])
    if kind in ("sell", "give", "lend"):
        return transfer_forms(kind, fact[1], fact[2], fact[3])
    if kind in ("paint", "move"):
        return action_forms(kind, fact[1], fact[2], fact[3])
    if kind == "cmp":
        return comparison_forms(fact[1], fact[2], fact[3], fact[4])
    raise ValueError(kind)


def negated_forms(fact: tuple) -> list[str]:
    """Surface forms of "not fact"."""
    kind = fact[0]
    plain = forms(fact)[0]
    out = [f"it is not true that {plain}"]
    if kind == "attr":
        out.append(plain.replace(" is ", " is not ", 1))
    elif kind == "place":
        out.append(plain.replace(" is in ", " is not in ", 1))
    elif kind == "owner":
        _, np, person = fact
        out += [f"{person} does not own {np}", f"{np} does not belong to {person}"]
    elif kind in ("sell", "give", "lend"):
        _, giver, receiver, np = fact
        base = {"sell": "sell", "give": "give", "lend": "lend"}[kind]
        out.append(f"{giver} did not {base} {np} to {receiver}")
        if kind == "sell":
            out.append(f"{receiver} did not buy {np} from {giver}")
        if kind == "lend":
            out.append(f"{receiver} did not borrow {np} from {giver}")
    elif kind in ("paint", "move"):
        _, agent, np, value = fact
        out.append(f"{agent} did not paint {np} {value}" if kind == "paint" else f"{agent} did not move {np} to the {value}")
    elif kind == "cmp":
        out.append(plain.replace(" is ", " is not ", 1))
    return out


def say(fact: tuple, rng: random.Random, negated: bool = False) -> str:
    return rng.choice(negated_forms(fact) if negated else forms(fact))


def swapped(fact: tuple) -> tuple | None:
    """The fact with its two roles exchanged (same words, other meaning), if it has two roles."""
    kind = fact[0]
    if kind in ("sell", "give", "lend"):
        return (kind, fact[2], fact[1], fact[3])
    if kind == "cmp":
        return ("cmp", fact[2], fact[1], fact[3], fact[4])
    return None


PERSON_PAIRS = PERSON_COMPARISONS
THING_PAIRS = THING_COMPARISONS
