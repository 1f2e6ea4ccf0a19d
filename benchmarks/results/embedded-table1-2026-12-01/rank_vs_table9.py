"""The miniature Table 1's order of methods against the paper's T5-small results (appendix Table 9).

    python benchmarks/results/embedded-table1-2026-12-01/rank_vs_table9.py

Each method's average over the five embedded tasks (`results.csv` of this folder: seed 1, and for
compacter++ and full fine-tuning the mean of seeds 1-3, as docs/results.md's table; a task's
score is the mean of its metrics, as in the paper's last column) is ranked beside its average over
GLUE in Table 9 (T5-small, transcribed below from ../../../../shared/paper/compacter-appendix.txt,
lines 199-217). Table 9 has PHM-Adapter at n = 4, 8, 16, not the recipe's 12: each is tried.
Compacter and Compacter++ are the recipes' n = 4 rows. compacter++-drop is not in the paper.
"""
import csv
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from runners.tasks.metrics import _average_ranks, spearman  # STS-B's Spearman: Pearson on average ranks

TABLE_9 = {"full-finetune": 82.71, "adapter": 81.06, "adapterdrop": 79.71, "pfeiffer-adapter": 80.36,
           "adapter-lowrank": 80.41, "prompt-tuning-r": 72.48, "prompt-tuning-t": 72.78, "bitfit": 78.90,
           "intrinsic-said": 75.77, "compacter": 80.90, "compacter++": 80.49}
PHM_ADAPTER = {4: 80.94, 8: 80.16, 16: 79.70}


def ranks(values: list[float]) -> list[float]:
    """1 for the largest; ties share the mean of their places (the metrics' ranking, reversed)."""
    return _average_ranks([-value for value in values])


def kendall(x: list[float], y: list[float]) -> float:
    pairs = [(i, j) for i in range(len(x)) for j in range(i + 1, len(x))]
    sign = lambda v: (v > 0) - (v < 0)
    return sum(sign(x[i] - x[j]) * sign(y[i] - y[j]) for i, j in pairs) / len(pairs)


metrics: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
with open(Path(__file__).with_name("results.csv")) as handle:
    for row in csv.DictReader(handle):
        metrics[row["recipe"]][row["task"]].append(float(row["mean"]))
miniature = {recipe: statistics.fmean(statistics.fmean(scores) for scores in tasks.values())
             for recipe, tasks in metrics.items()}

for n, phm in PHM_ADAPTER.items():
    paper = {**TABLE_9, "phm-adapter": phm}
    names = sorted(paper)
    ours, theirs = [miniature[name] for name in names], [paper[name] for name in names]
    rho = spearman(ours, theirs) / 100
    print(f"PHM-Adapter at n = {n:2d}: Spearman's rho {rho:.3f}, Kendall's tau {kendall(ours, theirs):.3f} "
          f"over {len(names)} methods")
paper = {**TABLE_9, "phm-adapter": PHM_ADAPTER[4]}
names = sorted(paper, key=lambda name: -paper[name])
print("\n| method | Table 9 average | rank | miniature average | rank |\n| --- | --- | --- | --- | --- |")
ours_ranks = dict(zip(names, ranks([miniature[name] for name in names])))
for name, paper_rank in zip(names, ranks([paper[name] for name in names])):
    print(f"| {name} | {paper[name]:.2f} | {paper_rank:g} | {miniature[name]:.1f} | {ours_ranks[name]:g} |")
