"""A miniature Table 1's order of methods against the paper's T5-small results (appendix Table 9).

    python benchmarks/rank_vs_table9.py FOLDER [FOLDER ...]

FOLDER: output folders of ``runners.finetune`` (their ``result.json`` files; one run found twice is
refused). Each recipe's average over the tasks (a task's score: the mean of its metrics, averaged
over the seeds found) is ranked beside its average over GLUE in Table 9 (T5-small, transcribed from
shared/paper/compacter-appendix.txt, lines 199-217), with Spearman's rho and Kendall's tau. Only
recipes with a score on every task found take part; the others are named. Table 9 has PHM-Adapter
at n = 4, 8, 16, not the recipe's 12: each is tried. Compacter and Compacter++ are the recipes'
n = 4 rows.

>>> round(kendall([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]), 3), ranks([5.0, 9.0, 9.0])
(-1.0, [3.0, 1.5, 1.5])
"""

from __future__ import annotations

import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from runners.finetune.results import RunResult, found, one_per_run  # noqa: E402
from runners.tasks.metrics import _average_ranks, spearman  # noqa: E402  (STS-B's Spearman: Pearson on average ranks)

TABLE_9 = {"full-finetune": 82.71, "adapter": 81.06, "adapterdrop": 79.71, "pfeiffer-adapter": 80.36,
           "adapter-lowrank": 80.41, "prompt-tuning-r": 72.48, "prompt-tuning-t": 72.78, "bitfit": 78.90,
           "intrinsic-said": 75.77, "compacter": 80.90, "compacter++": 80.49}
PHM_ADAPTER = {4: 80.94, 8: 80.16, 16: 79.70}


def ranks(values: list[float]) -> list[float]:
    """1 for the largest; ties share the mean of their places (the metrics' ranking, reversed)."""
    return _average_ranks([-value for value in values])


def kendall(x: list[float], y: list[float]) -> float:
    pairs = [(i, j) for i in range(len(x)) for j in range(i + 1, len(x))]
    sign = lambda v: (v > 0) - (v < 0)  # noqa: E731
    return sum(sign(x[i] - x[j]) * sign(y[i] - y[j]) for i, j in pairs) / len(pairs)


def report(miniature: dict[str, float], label: str = "miniature") -> str:
    """The correlations for each PHM-Adapter row of Table 9, and the side-by-side table (n = 4)."""
    lines = []
    for n, phm in PHM_ADAPTER.items():
        paper = {**TABLE_9, "phm-adapter": phm}
        names = sorted(name for name in paper if name in miniature)
        ours, theirs = [miniature[name] for name in names], [paper[name] for name in names]
        lines.append(f"PHM-Adapter at n = {n:2d}: Spearman's rho {spearman(ours, theirs) / 100:.3f}, "
                     f"Kendall's tau {kendall(ours, theirs):.3f} over {len(names)} methods")
    paper = {**TABLE_9, "phm-adapter": PHM_ADAPTER[4]}
    names = sorted((name for name in paper if name in miniature), key=lambda name: -paper[name])
    lines += ["", f"| method | Table 9 average | rank | {label} average | rank |", "| --- | --- | --- | --- | --- |"]
    ours_ranks = dict(zip(names, ranks([miniature[name] for name in names])))
    for name, paper_rank in zip(names, ranks([paper[name] for name in names])):
        lines.append(f"| {name} | {paper[name]:.2f} | {paper_rank:g} | {miniature[name]:.1f} | {ours_ranks[name]:g} |")
    return "\n".join(lines)


def averages(folders: list[str]) -> tuple[dict[str, float], dict[str, list[str]], list[str]]:
    """(recipe → average task score over the tasks, recipe → tasks it lacks, every task found)."""
    finished = found(folders, RunResult)
    one_per_run(finished)
    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for _, result in finished:
        if not result.setting:
            scores[result.recipe][result.task].append(statistics.fmean(result.test.values()))
    tasks = sorted({task for by_task in scores.values() for task in by_task})
    missing = {recipe: [task for task in tasks if task not in by_task] for recipe, by_task in scores.items()}
    complete = {recipe: statistics.fmean(statistics.fmean(by_task[task]) for task in tasks)
                for recipe, by_task in scores.items() if not missing[recipe]}
    return complete, {recipe: lacking for recipe, lacking in missing.items() if lacking}, tasks


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    complete, missing, tasks = averages(argv)
    print(f"tasks: {', '.join(tasks)}")
    for recipe, lacking in sorted(missing.items()):
        print(f"left out, no score on {', '.join(lacking)}: {recipe}")
    ranked = {name: value for name, value in complete.items() if name in TABLE_9 or name == "phm-adapter"}
    if len(ranked) < 3:
        print(f"error: {len(ranked)} of Table 9's methods have a score on every task; a ranking needs 3",
              file=sys.stderr)
        return 2
    print(report(ranked))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
