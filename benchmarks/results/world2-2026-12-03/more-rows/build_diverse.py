"""Rows of world 2's shipped tasks over ONE word partition for all tasks, with many training rows.
python build_diverse.py OUT TRAIN_ROWS"""
import json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from runners.embedded.world2 import SEED, LEXICON_SCALE, CORPUS_DOCUMENTS, DEFINITIONS_PER_WORD, SUPERVISED_EXAMPLES, EXPLAIN_EXAMPLES
from runners.embedded.world2.lexicon import make_lexicon
from runners.embedded.world2.corpus import make_corpus
from runners.embedded.world2.supervised import supervised_examples, explain_examples, explained_sentences
from runners.embedded.world2.benchmark import make_rows, sentences
out, n = Path(sys.argv[1]), int(sys.argv[2])
lex = make_lexicon(SEED, LEXICON_SCALE)
docs = make_corpus(lex, SEED, CORPUS_DOCUMENTS, DEFINITIONS_PER_WORD)
pairs = supervised_examples(lex, SEED, SUPERVISED_EXAMPLES) + explain_examples(lex, SEED, EXPLAIN_EXAMPLES)
excl = {s for d in docs for s in sentences(d)} | explained_sentences(pairs)
for task in sys.argv[3:]:
    made = make_rows(task, lex, SEED, {"train": n, "validation": 500, "test": 500}, exclude=excl,
                     shares={"train": 0.7, "validation": 0.15, "test": 0.15})
    tr = {w for _, ws in made["train"] for w in ws}
    te = {w for _, ws in made["test"] for w in ws}
    print(task, "train words", len(tr), "test words", len(te), "overlap", len(tr & te))
    for split, rows in made.items():
        (out / task).mkdir(parents=True, exist_ok=True)
        with open(out / task / f"{split}.jsonl", "w") as f:
            for r, _ in rows: f.write(json.dumps(r) + "\n")
