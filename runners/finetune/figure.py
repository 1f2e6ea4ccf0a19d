"""The Figure 1 of a run of several recipes: average score against trainable share.

After a run of two or more recipes, `runners.finetune` writes ``OUT/figure1.png``: one circle
per recipe at (trainable %, mean over tasks of the task scores), log x, as the paper's Figure 1.
The runner does not measure memory (its runs share a machine), so the circles are of one size;
``python -m runners.efficiency`` measures time and memory per recipe, and ``python -m
runners.plot --efficiency OUT/efficiency.csv --scores OUT/results.csv`` draws them as circle areas.

>>> from runners.finetune.results import RunResult
>>> runs = [RunResult(task, recipe, 1, {"accuracy": score}, trainable_parameters=10, trainable_percent=share)
...         for task, recipe, score, share in (("a", "bitfit", 70.0, 0.1), ("b", "bitfit", 80.0, 0.1),
...                                            ("a", "full-finetune", 90.0, 100.0))]
>>> figure_points(runs)
({'bitfit': 0.1, 'full-finetune': 100.0}, {'bitfit': 75.0, 'full-finetune': 90.0})
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path

from .results import RunResult, summarize

FIGURE_FILE = "figure1.png"


def figure_points(results: Sequence[RunResult]) -> tuple[dict[str, float], dict[str, float]]:
    """Per recipe: its trainable % and its average task score (a task's metrics averaged first)."""
    shares: dict[str, float] = {}
    scores: dict[str, list[float]] = {}
    for row in summarize(results):
        if row.trainable_percent is None:
            continue
        shares[row.label] = row.trainable_percent
        scores.setdefault(row.label, []).append(row.task_score)
    return shares, {label: statistics.fmean(values) for label, values in scores.items()}


def write_figure(results: Sequence[RunResult], folder: str | Path, title: str = "") -> Path | None:
    """``folder/figure1.png`` when two or more recipes ran and matplotlib is installed, else None."""
    shares, scores = figure_points(results)
    if len(scores) < 2:
        return None
    try:
        import matplotlib  # noqa: F401 — optional: the plot is skipped without it
    except ImportError:
        return None
    from runners.plot import EfficiencyPoint, plot_tradeoff

    points = {label: EfficiencyPoint(label, share, None) for label, share in shares.items()}
    output = Path(folder) / FIGURE_FILE
    plot_tradeoff(points, scores, output, title or "average test score vs trainable parameters")
    return output
