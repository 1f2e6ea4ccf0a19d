"""The shipped world-2 benchmark, row for row, each row with a `rationale`: the `explain:` answer
(pretraining's format, `supervised.property_phrase`) for the row's designated words, in the order
they first appear in the task's source text.
python build_explained.py OUT [--changed] [--decisive] [--only-TASK]   # --changed: mrpc's rationale names only the replaced words; --decisive: mnli's only the hypothesis person's word and the claim's; OUT/<task>/{train,validation,test}.jsonl; checks the rows against the shipped files"""
import json, sys
from pathlib import Path
from shipped import shipped_rows, shipped_world, write_rows
from runners.embedded.world2 import BENCHMARK_DIR
from runners.embedded.world2.benchmark import TASK_FIELDS
from runners.embedded.world2.build import task_texts
from runners.embedded.world2.supervised import property_phrase


def with_rationale(task, lexicon):
    def row_of(row, words):
        tokens = task_texts(task, row)[0].split()
        if task == "mrpc" and "--changed" in sys.argv:   # only the words one sentence has and the other has not
            has = [lambda w, s=row[c].split(): any(t in (w, w + 'ed', w + 'd') for t in s) for c in ("sentence1", "sentence2")]
            words = [w for w in words if has[0](w) != has[1](w)]
        if task == "mnli" and "--decisive" in sys.argv:  # the premise word of the hypothesis's person, the claim's own words
            who = row["hypothesis"].split()[3]
            about = [p for p in row["premise"].split(" . ") if f" {who} 's " in f" {p} "]
            words = [w for w in words if w in row["hypothesis"].split() or (about and w in about[0].split())]
        ordered = sorted(words, key=lambda w: next(i for i, t in enumerate(tokens) if t in (w, w + 's', w + 'ed', w + 'd')))
        return {**row, "rationale": " ; ".join(property_phrase(lexicon, w) for w in ordered) or "none"}
    return row_of


out = Path(sys.argv[1])
TASKS = [t for t in TASK_FIELDS if f'--only-{t}' in sys.argv] or list(TASK_FIELDS)
lexicon, exclude = shipped_world()
for task in TASKS:
    made = shipped_rows(task, lexicon, exclude)
    for split, rows in made.items():
        shipped = (BENCHMARK_DIR / task / f"{split}.jsonl").read_text().splitlines()
        assert [json.loads(line) for line in shipped] == [row for row, _ in rows], (task, split)
    write_rows(out, task, made, with_rationale(task, lexicon))
    print(task, "ok:", {split: len(rows) for split, rows in made.items()})
