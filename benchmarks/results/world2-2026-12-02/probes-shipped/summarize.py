"""Table of probe runs: `python summarize.py DIR [DIR ...]` → task × recipe, test score and invalid outputs.

Each DIR is a `--output-dir` of `probe_dir.py` (runs under DIR/<task>/<recipe>/seed-<s>/). An output is
invalid when it is not one of the task's labels (classification) or not a number (stsb).
"""
import json
import sys
from pathlib import Path

LABELS = {"sst2": {"negative", "positive"}, "cola": {"no", "yes"}, "mrpc": {"no", "yes"}, "mnli": {"yes", "maybe", "no"}}


def invalid_share(task: str, predictions: Path) -> float:
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    short = task.split("-", 1)[1]

    def valid(text: str) -> bool:
        if short == "stsb":
            try:
                float(text)
                return True
            except ValueError:
                return False
        return text in LABELS[short]

    return 100 * sum(not valid(r["prediction"]) for r in rows) / len(rows)


for directory in sys.argv[1:]:
    for result in sorted(Path(directory).glob("*/*/seed-*/result.json")):
        r = json.loads(result.read_text())
        scores = " / ".join(f"{k} {v:.1f}" for k, v in r["test"].items())
        invalid = invalid_share(r["task"], result.parent / "test_predictions.jsonl")
        print(f"{directory}\t{r['task']}\t{r['recipe']}\tseed {r['seed']}\t{scores}\tinvalid {invalid:.1f} %\t"
              f"best epoch {r['best_epoch']}\t{r['seconds']:.0f} s")
