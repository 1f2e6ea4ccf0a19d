"""How far two runs of ``runners.finetune`` with the same arguments are apart: an uninterrupted one
and one stopped with ``--stop-after-steps`` and continued with ``--resume``.

Compares, for every run folder (TASK/RECIPE/seed-S) the two outputs share: each adapter tensor of
``last/`` and ``best/`` (max |difference|), the logged training losses step by step, the test
predictions row by row and the test score. Prints one block per run and a last line
``identical`` or ``different``; the exit status is 0 either way (it measures, it does not judge).

    python benchmarks/gpu/compare_runs.py OUT_UNINTERRUPTED OUT_RESUMED
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from safetensors.torch import load_file

from runners.finetune.results import RESULT_FILE
from runners.finetune.task_data import PREDICTIONS_FILE
from surgery.checkpoint import WEIGHTS_FILE


def run_folders(output_dir: Path) -> dict[str, Path]:
    return {str(path.parent.relative_to(output_dir)): path.parent for path in output_dir.glob(f"*/*/seed-*/{RESULT_FILE}")}


def max_tensor_difference(first: Path, second: Path) -> float:
    a, b = load_file(str(first)), load_file(str(second))
    if a.keys() != b.keys():
        raise SystemExit(f"{first} and {second} hold different tensors")
    return max(((a[key].double() - b[key].double()).abs().max().item() for key in a), default=0.0)


def train_losses(run: Path) -> dict[int, float]:
    lines = (json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip())
    return {line["step"]: line["loss"] for line in lines if line.get("event") == "train"}


def predictions(run: Path) -> list[str]:
    return [json.loads(line)["prediction"] for line in (run / PREDICTIONS_FILE).read_text().splitlines()]


def compare(first: Path, second: Path) -> bool:
    """Print how `first` and `second` differ; True when nothing does."""
    same = True
    for name in ("last", "best"):
        difference = max_tensor_difference(first / name / WEIGHTS_FILE, second / name / WEIGHTS_FILE)
        print(f"  {name}/ adapter tensors: max |difference| {difference:.3g}")
        same &= difference == 0
    losses_a, losses_b = train_losses(first), train_losses(second)
    shared = sorted(losses_a.keys() & losses_b.keys())
    loss_gap = max((abs(losses_a[step] - losses_b[step]) for step in shared), default=0.0)
    print(f"  logged losses: {len(shared)} steps in both (of {len(losses_a)} / {len(losses_b)}), "
          f"max |difference| {loss_gap:.3g}")
    same &= loss_gap == 0 and len(shared) == len(losses_a) == len(losses_b)
    rows_a, rows_b = predictions(first), predictions(second)
    unequal = sum(x != y for x, y in zip(rows_a, rows_b)) + abs(len(rows_a) - len(rows_b))
    print(f"  test predictions: {unequal} of {max(len(rows_a), len(rows_b))} rows differ")
    scores = [json.loads((run / RESULT_FILE).read_text())["test"] for run in (first, second)]
    print(f"  test scores: {scores[0]} / {scores[1]}")
    return same and unequal == 0 and scores[0] == scores[1]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    first, second = (Path(arg) for arg in argv)
    runs_a, runs_b = run_folders(first), run_folders(second)
    if not runs_a or runs_a.keys() != runs_b.keys():
        print(f"error: the two folders hold different runs: {sorted(runs_a)} / {sorted(runs_b)}", file=sys.stderr)
        return 2
    identical = True
    for name in sorted(runs_a):
        print(name)
        identical &= compare(runs_a[name], runs_b[name])
    print("identical" if identical else "different")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
