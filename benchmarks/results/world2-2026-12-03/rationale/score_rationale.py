"""How often a run's test prediction names the row's own rationale, and the label's accuracy after the
right and after a wrong rationale.
python score_rationale.py RUN_DIR/test_predictions.jsonl …   (runs of `probe_explained.py … --task probe-<task>-explained`,
or of the shipped tasks: a path with `world2-<task>/`)

Reads both forms of test_predictions.jsonl: `prediction` and `predicted_rationale` apart (the runner
since Task.rationale_column), or the whole `<rationale> ; <label>` in `prediction` and `gold` (the
first runs, made with this folder's earlier wrapper of the task's target and scorer)."""
import json, re, sys

LABELS = {"sst2": {"negative", "positive"}, "cola": {"no", "yes"}, "mrpc": {"no", "yes"}, "mnli": {"yes", "maybe", "no"}}


def valid(task: str, answer: str) -> bool:
    """A label of the task, or for stsb a number."""
    if task == "stsb":
        return re.fullmatch(r"-?\d+(\.\d+)?", answer) is not None
    return answer in LABELS[task]


def parts(text: str) -> list[str]:
    rationale, _, answer = text.rpartition(";")
    return [rationale.strip(), answer.strip()]


for path in sys.argv[1:]:
    rows = [json.loads(line) for line in open(path)]
    for r in rows:
        if "predicted_rationale" in r:
            r["said"], r["answer"], r["label_text"] = r["predicted_rationale"], r["prediction"], str(r["gold"])
        else:
            (r["said"], r["answer"]), r["label_text"] = parts(r["prediction"]), parts(r["gold"])[1]
    right = [r for r in rows if r["said"] == r["rationale"]]
    wrong = [r for r in rows if r["said"] != r["rationale"]]
    ok = lambda r: r["answer"] == r["label_text"]
    share = lambda rs: f"{100 * sum(map(ok, rs)) / len(rs):.1f} % of {len(rs)}" if rs else "-"
    task = re.search(r"probe-(\w+)-explained|world2-(\w+)/", path).group(1, 2)
    task = task[0] or task[1]
    invalid = 100 * sum(not valid(task, r["answer"]) for r in rows) / len(rows)
    print(f"{path}: rationale right {100 * len(right) / len(rows):.1f} %; label (or score) exact {share(rows)} "
          f"(after the right rationale {share(right)}, after a wrong one {share(wrong)}); invalid {invalid:.1f} %")
