"""The invented lexicon of world 2: thousands of made-up words, each with properties the corpus states.

Every word is spelled from the same syllables, so its shape says nothing about its class or its
properties; only the corpus does. A word belongs to one class:

==============  =======================================  ==========================================
class           property                                  example
==============  =======================================  ==========================================
``evaluative``  a gloss and its polarity                  "brelish" means *good* (positive)
``descriptive`` a gloss; synonyms share it, antonyms      "flomish" means *big*, the opposite of
                hold the opposite gloss                   every word that means *small*
``verb``        a gloss and whether it takes an object    "to drelk" means *to push* (transitive)
``noun``        a category (hypernym) and one synonym     "a tarvel" is a kind of *fruit*, also
                                                          called "a morsip"
``person``      a profession and a home town (entities)   "kelvar" is a *baker* from "dorsa"
``town``        (the towns people come from)              "dorsa"
==============  =======================================  ==========================================

>>> lexicon = make_lexicon(seed=1, scale=0.02)
>>> word = lexicon.words_of("evaluative")[0]
>>> lexicon.entries[word].polarity in (1, -1), lexicon.entries[word].gloss in POSITIVE + NEGATIVE
(True, True)
>>> len(set(lexicon.entries)) == len(lexicon.entries) and not set(lexicon.entries) & ENGLISH
True
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

ONSETS = "b d f g k l m n p r s t v z br dr fl gl kr pl sk sl st tr sn gr".split()
VOWELS = "a e i o u a e i o u ai ou".split()
CODAS = ["", "", "", "n", "r", "l", "s", "k", "m", "nt", "rk", "sk"]

POSITIVE = ("good", "great", "excellent", "lovely", "wonderful", "pleasant", "superb", "fine")
NEGATIVE = ("bad", "awful", "terrible", "poor", "nasty", "dreadful", "horrible", "weak")
ANTONYM_PAIRS = (("big", "small"), ("old", "new"), ("hot", "cold"), ("heavy", "light"), ("long", "short"),
                 ("soft", "hard"), ("fast", "slow"), ("wet", "dry"), ("bright", "dark"), ("loud", "quiet"),
                 ("thick", "thin"), ("clean", "dirty"), ("full", "empty"), ("sharp", "blunt"), ("high", "low"),
                 ("rough", "smooth"))
TRANSITIVE = ("push", "carry", "wash", "lift", "break", "mend", "hide", "open", "throw", "pull", "fold", "shake")
INTRANSITIVE = ("sleep", "laugh", "run", "sing", "dance", "wait", "shout", "smile", "swim", "cry", "yawn", "rest")
# Past tenses of the glosses (the corpus uses them in English sentences).
PAST = {"push": "pushed", "carry": "carried", "wash": "washed", "lift": "lifted", "break": "broke",
        "mend": "mended", "hide": "hid", "open": "opened", "throw": "threw", "pull": "pulled", "fold": "folded",
        "shake": "shook", "sleep": "slept", "laugh": "laughed", "run": "ran", "sing": "sang", "dance": "danced",
        "wait": "waited", "shout": "shouted", "smile": "smiled", "swim": "swam", "cry": "cried", "yawn": "yawned",
        "rest": "rested"}
# Categories of things, each with what people do with one (English, as the corpus says it).
CATEGORIES = {"fruit": "ate", "tool": "used", "animal": "fed", "vehicle": "drove", "garment": "wore",
              "instrument": "played", "plant": "watered", "drink": "drank", "toy": "played with",
              "bird": "watched", "cake": "baked", "boat": "sailed"}
PROFESSIONS = {"baker": "bakes bread", "farmer": "grows wheat", "doctor": "treats the sick", "teacher": "teaches children",
               "painter": "paints walls", "sailor": "sails the sea", "singer": "sings songs", "builder": "builds houses",
               "driver": "drives a bus", "hunter": "hunts deer"}
# Fillers: plain words of the templates, never a designated (held-out) item.
NAMES = "mia tom ava leo zoe max sam eva ben amy jon kim ray ana dan tim lia ida".split()
THINGS = "lamp chair meal film song book hotel game trip show coat bike room gift".split()
PLACES = "kitchen garden attic office garage hallway cellar porch yard market".split()
# Plain English words the templates use, which no invented word may equal.
ENGLISH = set(" ".join((*POSITIVE, *NEGATIVE, *(w for p in ANTONYM_PAIRS for w in p), *TRANSITIVE, *INTRANSITIVE,
                        *PAST.values(), *CATEGORIES, *CATEGORIES.values(), *PROFESSIONS, *PROFESSIONS.values(), *NAMES, *THINGS, *PLACES)).split())
ENGLISH |= set("a an the is was not it to of and but so that means also called kind word from in on at by who "
               "every all some one thing things box house visitor happy sad praise blame town lives works as "
               "day night he she they said did does do what opposite same very really quite".split())

# How many words of each class at scale 1.0 (a test passes a small scale).
COUNTS = {"evaluative": 640, "descriptive": 800, "verb": 480, "noun_concept": 600, "person": 800, "town": 40}


@dataclass(frozen=True)
class Entry:
    """One invented word and its properties (the fields of its class; the rest stay None)."""

    word: str
    kind: str
    gloss: str | None = None          # evaluative, descriptive, verb: the English word it means
    polarity: int | None = None       # evaluative: +1 / -1
    transitive: bool | None = None    # verb
    category: str | None = None       # noun
    synonym: str | None = None        # noun: its one synonym (the other form of its concept)
    profession: str | None = None     # person
    town: str | None = None           # person


@dataclass
class Lexicon:
    entries: dict[str, Entry] = field(default_factory=dict)
    _by_kind: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _by_gloss: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def add(self, entry: Entry) -> None:
        self.entries[entry.word] = entry
        self._by_kind.setdefault(entry.kind, []).append(entry.word)
        if entry.gloss is not None:
            self._by_gloss.setdefault(entry.gloss, []).append(entry.word)

    def words_of(self, kind: str) -> list[str]:
        """Words of one class, in creation order."""
        return list(self._by_kind.get(kind, ()))

    def words_meaning(self, gloss: str) -> list[str]:
        """The words whose gloss is `gloss` (synonyms of each other)."""
        return list(self._by_gloss.get(gloss, ()))

    def same_meaning(self, first: str, second: str) -> bool:
        """Whether two words of one class mean the same (one gloss, or one noun concept)."""
        a, b = self.entries[first], self.entries[second]
        if a.kind == "noun":
            return first == second or a.synonym == second
        return a.gloss is not None and a.gloss == b.gloss

    def opposite_gloss(self, gloss: str) -> str:
        for pair in ANTONYM_PAIRS:
            if gloss in pair:
                return pair[1 - pair.index(gloss)]
        raise ValueError(f"{gloss!r} has no opposite")


def spell(rng: random.Random) -> str:
    """An invented word of two or three syllables."""
    syllables = rng.choice((2, 2, 2, 2, 3))
    return "".join(rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(syllables)) + rng.choice(CODAS)


def make_lexicon(seed: int, scale: float = 1.0) -> Lexicon:
    """The lexicon for `seed`: ``COUNTS`` words of each class times `scale` (at least two per gloss)."""
    rng = random.Random(f"world2-lexicon-{seed}")
    taken: set[str] = set(ENGLISH)

    def new_word() -> str:
        while True:
            word = spell(rng)
            # no word is another word plus "s" (plurals) or "ed" (past tenses)
            if all(w not in taken for w in (word, word + "s", word + "ed", word[:-1], word[:-2])):
                taken.add(word)
                return word

    def count(kind: str, groups: int) -> int:
        return max(2 * groups, round(COUNTS[kind] * scale))

    lexicon = Lexicon()
    glosses = [(g, 1) for g in POSITIVE] + [(g, -1) for g in NEGATIVE]
    for i in range(count("evaluative", len(glosses))):
        gloss, polarity = glosses[i % len(glosses)]
        word = new_word()
        lexicon.add(Entry(word, "evaluative", gloss=gloss, polarity=polarity))
    descriptive = [g for pair in ANTONYM_PAIRS for g in pair]
    for i in range(count("descriptive", len(descriptive))):
        word = new_word()
        lexicon.add(Entry(word, "descriptive", gloss=descriptive[i % len(descriptive)]))
    verbs = [(g, True) for g in TRANSITIVE] + [(g, False) for g in INTRANSITIVE]
    for i in range(count("verb", len(verbs))):
        gloss, transitive = verbs[i % len(verbs)]
        word = new_word()
        lexicon.add(Entry(word, "verb", gloss=gloss, transitive=transitive))
    categories = list(CATEGORIES)
    for i in range(count("noun_concept", len(categories))):
        first, second = new_word(), new_word()
        category = categories[i % len(categories)]
        lexicon.add(Entry(first, "noun", category=category, synonym=second))
        lexicon.add(Entry(second, "noun", category=category, synonym=first))
    towns = [new_word() for _ in range(count("town", 2))]
    for town in towns:
        lexicon.add(Entry(town, "town"))
    professions = list(PROFESSIONS)
    for i in range(count("person", len(professions))):
        word = new_word()
        lexicon.add(Entry(word, "person", profession=professions[i % len(professions)],
                          town=rng.choice(towns)))
    return lexicon
