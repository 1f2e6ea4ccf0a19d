"""world2-mnli in one step: the premise states one person's thing or visitor, the hypothesis says
what it is (yes) or what it is not (no). No third person, no `maybe`.
python build_one_hop.py OUT   # OUT/mnli/{train,validation,test}.jsonl, shipped sizes and word parts"""
import json, random, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from runners.embedded.world2 import (BENCHMARK_SIZES, CORPUS_DOCUMENTS, DEFINITIONS_PER_WORD, EXPLAIN_EXAMPLES,
                                     HELD_OUT_SHARE, LEXICON_SCALE, SEED, SUPERVISED_EXAMPLES)
from runners.embedded.world2 import benchmark
from runners.embedded.world2.benchmark import _person_claim, _thing_claim, make_rows, sentences
from runners.embedded.world2.corpus import article, make_corpus
from runners.embedded.world2.lexicon import NAMES, make_lexicon
from runners.embedded.world2.supervised import explain_examples, explained_sentences, supervised_examples


def one_hop_row(rng: random.Random, lexicon, parts, label: int):
    label = 0 if label == 0 else 2          # yes / no
    who = rng.choice(NAMES)
    things = rng.random() < 0.5
    kind = "noun" if things else "person"
    word = rng.choice(parts[kind])
    say = (lambda what: f"the thing in {who} 's box is {what}") if things else \
        (lambda what: f"the visitor at {who} 's house was {what}")
    claim = (_thing_claim if things else _person_claim)(rng, lexicon, word, parts[kind], label == 0)
    words = (word,) + tuple(w for w in claim.split() if w in lexicon.entries and lexicon.entries[w].kind != "town")
    premise = say(f"{article(word)} {word}" if things else word)
    return {"premise": premise + " .", "hypothesis": say(claim) + " .", "label": label}, words


benchmark.ROW_MAKERS["mnli"] = (one_hop_row, 2)
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
