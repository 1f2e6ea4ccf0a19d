"""Write world 2's benchmark alone (current benchmark.py) into OUT/glue, reusing build's exclusion."""
import json, random, sys
from pathlib import Path
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[4]))
from runners.embedded.build import write_jsonl
from runners.embedded.world2 import *
from runners.embedded.world2.benchmark import TASK_FIELDS, make_rows, sentences
from runners.embedded.world2.corpus import make_corpus
from runners.embedded.world2.lexicon import make_lexicon
from runners.embedded.world2.supervised import explain_examples, explained_sentences, supervised_examples
out = Path(sys.argv[1])
lexicon = make_lexicon(SEED, LEXICON_SCALE)
documents = make_corpus(lexicon, SEED, CORPUS_DOCUMENTS, DEFINITIONS_PER_WORD)
pairs = supervised_examples(lexicon, SEED, SUPERVISED_EXAMPLES) + explain_examples(lexicon, SEED, EXPLAIN_EXAMPLES)
excl = {s for d in documents for s in sentences(d)} | explained_sentences(pairs)
for task in TASK_FIELDS:
    made = make_rows(task, lexicon, SEED, BENCHMARK_SIZES, exclude=excl, shares=HELD_OUT_SHARE)
    for split, rows in made.items():
        write_jsonl((r for r, _ in rows), out / "glue" / task / f"{split}.jsonl")
    print(task, made["test"][0][0], made["test"][1][0])
