"""The shipped world-2 benchmark, row for row, each row with a `rationale`: the `explain:` answer
(pretraining's format, `supervised.property_phrase`) for the row's designated words, in the order
they first appear in the task's source text.
python build_explained.py OUT [--changed] [--decisive] [--only-TASK]   # --changed: mrpc's rationale names only the replaced words; --decisive: mnli's only the hypothesis person's word and the claim's; OUT/<task>/{train,validation,test}.jsonl; checks the rows against the shipped files"""
import json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from runners.embedded.world2 import (BENCHMARK_DIR, BENCHMARK_SIZES, CORPUS_DOCUMENTS, DEFINITIONS_PER_WORD,
                                     EXPLAIN_EXAMPLES, HELD_OUT_SHARE, LEXICON_SCALE, SEED, SUPERVISED_EXAMPLES)
from runners.embedded.world2.benchmark import TASK_FIELDS, make_rows, sentences
from runners.embedded.world2.build import task_texts
from runners.embedded.world2.corpus import make_corpus
from runners.embedded.world2.lexicon import make_lexicon
from runners.embedded.world2.supervised import explain_examples, explained_sentences, property_phrase, supervised_examples
import random

out = Path(sys.argv[1])
TASKS = [t for t in TASK_FIELDS if f'--only-{t}' in sys.argv] or list(TASK_FIELDS)
lexicon = make_lexicon(SEED, LEXICON_SCALE)
documents = make_corpus(lexicon, SEED, CORPUS_DOCUMENTS, DEFINITIONS_PER_WORD)
pairs = supervised_examples(lexicon, SEED, SUPERVISED_EXAMPLES) + explain_examples(lexicon, SEED, EXPLAIN_EXAMPLES)
random.Random(f"world2-mixture-{SEED}").shuffle(pairs)
exclude = {s for d in documents for s in sentences(d)} | explained_sentences(pairs)
for task in TASKS:
    made = make_rows(task, lexicon, SEED, dict(BENCHMARK_SIZES), exclude=exclude, shares=HELD_OUT_SHARE)
    for split, rows in made.items():
        shipped = (BENCHMARK_DIR / task / f"{split}.jsonl").read_text().splitlines()
        assert [json.loads(line) for line in shipped] == [row for row, _ in rows], (task, split)
        (out / task).mkdir(parents=True, exist_ok=True)
        with open(out / task / f"{split}.jsonl", "w") as f:
            for row, words in rows:
                tokens = task_texts(task, row)[0].split()
                if task == "mrpc" and "--changed" in sys.argv:   # only the words one sentence has and the other has not
                    has = [lambda w, s=row[c].split(): any(t in (w, w + 'ed', w + 'd') for t in s) for c in ("sentence1", "sentence2")]
                    words = [w for w in words if has[0](w) != has[1](w)]
                if task == "mnli" and "--decisive" in sys.argv:  # the premise word of the hypothesis's person, the claim's own words
                    who = row["hypothesis"].split()[3]
                    about = [p for p in row["premise"].split(" . ") if f" {who} 's " in f" {p} "]
                    words = [w for w in words if w in row["hypothesis"].split() or (about and w in about[0].split())]
                ordered = sorted(words, key=lambda w: next(i for i, t in enumerate(tokens) if t in (w, w + 's', w + 'ed', w + 'd')))
                f.write(json.dumps({**row, "rationale": " ; ".join(property_phrase(lexicon, w) for w in ordered) or "none"}) + "\n")
    print(task, "ok:", {split: len(rows) for split, rows in made.items()})
