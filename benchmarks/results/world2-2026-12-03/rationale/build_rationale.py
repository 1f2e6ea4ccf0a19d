"""world2-mnli in one step, with each row's rationale: the premise word's property as pretraining's
`define:` / `explain:` answers it (a thing's category; a person's `profession from town`).
Claims are by category (things) or by profession or town (persons), so the rationale decides the label.
python build_rationale.py OUT   # OUT/mnli/{train,validation,test}.jsonl, shipped sizes and word parts"""
import random, sys
from pathlib import Path
from shipped import shipped_rows, shipped_world, write_rows
from runners.embedded.world2 import benchmark
from runners.embedded.world2.benchmark import CATEGORIES, PROFESSIONS
from runners.embedded.world2.corpus import article
from runners.embedded.world2.lexicon import NAMES
from runners.embedded.world2.supervised import property_phrase


def claim_row(rng: random.Random, lexicon, parts, label: int):
    true = label == 0
    label = 0 if true else 2          # yes / no
    who = rng.choice(NAMES)
    things = rng.random() < 0.5
    kind = "noun" if things else "person"
    word = rng.choice(parts[kind])
    entry = lexicon.entries[word]
    if things:
        say = lambda what: f"the thing in {who} 's box is {what}"
        category = entry.category if true else rng.choice([c for c in CATEGORIES if c != entry.category])
        claim, premise = f"{article(category)} {category}", say(f"{article(word)} {word}")
    else:
        say = lambda what: f"the visitor at {who} 's house was {what}"
        if rng.random() < 0.5:
            profession = entry.profession if true else rng.choice([p for p in PROFESSIONS if p != entry.profession])
            claim = f"{article(profession)} {profession}"
        else:
            towns = sorted({lexicon.entries[w].town for w in lexicon.words_of("person")})
            claim = "from " + (entry.town if true else rng.choice([t for t in towns if t != entry.town]))
        premise = say(word)
    row = {"premise": premise + " .", "hypothesis": say(claim) + " .", "label": label,
           "rationale": property_phrase(lexicon, word)}
    return row, (word,)


benchmark.ROW_MAKERS["mnli"] = (claim_row, 2)
lexicon, exclude = shipped_world()
made = shipped_rows("mnli", lexicon, exclude)
train_words = {w for _, ws in made["train"] for w in ws}
print("test words in train:", len({w for _, ws in made["test"] for w in ws} & train_words))
write_rows(Path(sys.argv[1]), "mnli", made)
