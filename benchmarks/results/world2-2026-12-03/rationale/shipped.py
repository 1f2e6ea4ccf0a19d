"""The shipped world 2 as this folder's build scripts need it: its lexicon, the pretraining sentences
no benchmark row may use, a task's rows as `python -m runners.embedded.world2.build` makes them
(`benchmark.ROW_MAKERS` may be replaced first), and a writer of the split files."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from runners.embedded.world2 import (BENCHMARK_SIZES, CORPUS_DOCUMENTS, DEFINITIONS_PER_WORD, EXPLAIN_EXAMPLES,
                                     HELD_OUT_SHARE, LEXICON_SCALE, SEED, SUPERVISED_EXAMPLES)
from runners.embedded.world2.benchmark import make_rows, sentences
from runners.embedded.world2.corpus import make_corpus
from runners.embedded.world2.lexicon import make_lexicon
from runners.embedded.world2.supervised import explain_examples, explained_sentences, supervised_examples


def shipped_world():
    """``(lexicon, excluded sentences)``: the shipped lexicon and every sentence of its corpus and
    of its supervised `explain:` sources."""
    lexicon = make_lexicon(SEED, LEXICON_SCALE)
    documents = make_corpus(lexicon, SEED, CORPUS_DOCUMENTS, DEFINITIONS_PER_WORD)
    pairs = supervised_examples(lexicon, SEED, SUPERVISED_EXAMPLES) + explain_examples(lexicon, SEED, EXPLAIN_EXAMPLES)
    return lexicon, {s for d in documents for s in sentences(d)} | explained_sentences(pairs)


def shipped_rows(task, lexicon, exclude):
    """``{split: [(row, designated words), …]}`` with the shipped sizes and held-out cut."""
    return make_rows(task, lexicon, SEED, dict(BENCHMARK_SIZES), exclude=exclude, shares=HELD_OUT_SHARE)


def write_rows(out: Path, task: str, made, row_of=lambda row, words: row):
    """OUT/<task>/<split>.jsonl, one line per row (``row_of(row, words)`` of each)."""
    (out / task).mkdir(parents=True, exist_ok=True)
    for split, rows in made.items():
        with open(out / task / f"{split}.jsonl", "w") as f:
            for row, words in rows:
                f.write(json.dumps(row_of(row, words)) + "\n")
