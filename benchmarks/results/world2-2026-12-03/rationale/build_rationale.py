"""world2-mnli in one step, with each row's rationale: the premise word's property as pretraining's
`define:` / `explain:` answers it (a thing's category; a person's `profession from town`).
Claims are by category (things) or by profession or town (persons), so the rationale decides the label.
python build_rationale.py OUT   # OUT/mnli/{train,validation,test}.jsonl, shipped sizes and word parts"""
import json, random, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from runners.embedded.world2 import (BENCHMARK_SIZES, CORPUS_DOCUMENTS, DEFINITIONS_PER_WORD, EXPLAIN_EXAMPLES,
                                     HELD_OUT_SHARE, LEXICON_SCALE, SEED, SUPERVISED_EXAMPLES)
from runners.embedded.world2 import benchmark
from runners.embedded.world2.benchmark import CATEGORIES, PROFESSIONS, make_rows, sentences
from runners.embedded.world2.corpus import article, make_corpus
from runners.embedded.world2.lexicon import NAMES, make_lexicon
from runners.embedded.world2.supervised import explain_examples, explained_sentences, property_phrase, supervised_examples

RATIONALES = {}


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
out = Path(sys.argv[1])
lexicon = make_lexicon(SEED, LEXICON_SCALE)
documents = make_corpus(lexicon, SEED, CORPUS_DOCUMENTS, DEFINITIONS_PER_WORD)
pairs = supervised_examples(lexicon, SEED, SUPERVISED_EXAMPLES) + explain_examples(lexicon, SEED, EXPLAIN_EXAMPLES)
exclude = {s for d in documents for s in sentences(d)} | explained_sentences(pairs)
made = make_rows("mnli", lexicon, SEED, dict(BENCHMARK_SIZES), exclude=exclude, shares=HELD_OUT_SHARE)
train_words = {w for _, ws in made["train"] for w in ws}
print("test words in train:", len({w for _, ws in made["test"] for w in ws} & train_words))
for split, rows in made.items():
    (out / "mnli").mkdir(parents=True, exist_ok=True)
    with open(out / "mnli" / f"{split}.jsonl", "w") as f:
        for row, _ in rows:
            f.write(json.dumps(row) + "\n")
