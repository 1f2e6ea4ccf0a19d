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

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from rank_vs_table9 import report  # noqa: E402  (benchmarks/rank_vs_table9.py: Table 9, the ranks and correlations)

metrics: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
with open(Path(__file__).with_name("results.csv")) as handle:
    for row in csv.DictReader(handle):
        metrics[row["recipe"]][row["task"]].append(float(row["mean"]))
miniature = {recipe: statistics.fmean(statistics.fmean(scores) for scores in tasks.values())
             for recipe, tasks in metrics.items()}
print(report({name: value for name, value in miniature.items() if name != "compacter++-drop"}))
