"""A Figure-1-style plot: score against trainable parameters (log x), circle area ∝ peak memory.

Run from the repository root::

    python -m runners.plot --efficiency efficiency-results/efficiency.csv --scores results.csv \\
        --output figure1.png

Inputs:

* ``--efficiency``: the CSV written by ``python -m runners.efficiency`` (columns ``recipe``,
  ``trainable_percent``, ``peak_memory_mib``, ``error``; others are ignored).
* ``--scores``: any CSV with a ``recipe`` column and a score column (``--score-column``, else
  ``score``, else ``mean``); other columns are ignored. Several rows for one recipe are averaged;
  with a ``task`` column, within each task first and then over tasks, as the paper averages GLUE
  tasks. So the finetune runner's ``results.csv`` (``python -m runners.finetune.results``: columns recipe,
  task, metric, mean, ...) is accepted as it is. A minimal file::

      recipe,score
      full-finetune,84.1
      compacter++,84.9

Recipes with an efficiency row and a score are plotted; the others are listed on stdout.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from runners.csv_input import read_checked_csv
from runners.errors import UsageError
from runners.figure_file import check_figure_path, write_figure

EFFICIENCY_COLUMNS = ("recipe", "trainable_percent", "peak_memory_mib")
EFFICIENCY_VALID = "the efficiency.csv that python -m runners.efficiency writes"
SCORES_VALID = "a CSV with a header 'recipe,score' (or the finetune runner's results.csv)"


@dataclass(frozen=True)
class EfficiencyPoint:
    recipe: str
    trainable_percent: float
    peak_memory_mib: float | None  # None: not measured (all circles drawn the same size)


def load_efficiency_rows(path: Path) -> dict[str, EfficiencyPoint]:
    """Measured recipe rows of an efficiency CSV, by recipe (references, errors and blanks are skipped).

    Raises:
        ValueError: when a column is missing or a figure is not a number (naming the line).
    """
    points = {}
    with Path(path).open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = sorted(set(EFFICIENCY_COLUMNS) - set(reader.fieldnames or []))
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; found {reader.fieldnames or []}; expected the "
                             f"efficiency.csv of runners.efficiency (columns {', '.join(EFFICIENCY_COLUMNS)}, ...)")
        for line, record in enumerate(reader, start=2):
            if record.get("kind") == "reference":  # floor / traced-identity have no score of their own
                continue
            if record.get("error") or not record.get("trainable_percent") or not record.get("peak_memory_mib"):
                continue
            try:
                figures = [float(record[column]) for column in ("trainable_percent", "peak_memory_mib")]
            except ValueError:
                raise ValueError(f"{path}, line {line}: trainable_percent {record['trainable_percent']!r} and "
                                 f"peak_memory_mib {record['peak_memory_mib']!r} must be numbers") from None
            points[record["recipe"]] = EfficiencyPoint(record["recipe"], *figures)
    return points


def load_scores(path: Path, score_column: str | None = None) -> dict[str, float]:
    """Mean score per recipe from a CSV with a ``recipe`` column and a score column.

    The score column is `score_column`, else ``score``, else ``mean`` (the finetune runner's
    ``results.csv``: one row per recipe × task × metric). With a ``task`` column, rows are
    averaged within each task first and the task means are then averaged, as the paper averages
    GLUE tasks (a task with two metrics, e.g. MRPC F1/accuracy, counts once).

    Raises:
        ValueError: when a column is missing or a score is not a number (naming the line).
    """
    by_task: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    with Path(path).open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        column = score_column or next((name for name in ("score", "mean") if name in header), "score")
        missing = {"recipe", column} - set(header)
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}; found {header}; "
                             f"expected a header like 'recipe,{column}'")
        for line, record in enumerate(reader, start=2):
            text = (record[column] or "").strip()
            if not text:
                continue
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"{path}, line {line}: score {text!r} is not a number") from None
            by_task[record["recipe"].strip()][(record.get("task") or "").strip()].append(value)
    return {recipe: statistics.fmean(statistics.fmean(values) for values in tasks.values())
            for recipe, tasks in by_task.items()}


def marker_areas(memories: list[float], smallest: float = 150.0, largest: float = 1500.0) -> list[float]:
    """Circle areas (points²) proportional to memory, the largest memory drawn at `largest`.

    The smallest circle is kept at least `smallest` so that it stays visible and labelled.

    >>> marker_areas([50.0, 100.0])
    [750.0, 1500.0]
    """
    top = max(memories)
    return [max(smallest, largest * memory / top) for memory in memories]


# Where a label may go relative to its circle, in points (dx, dy, horizontal alignment), in order of preference.
LABEL_OFFSETS = ((0, 1, "center"), (0, -1, "center"), (1, 0, "left"), (-1, 0, "right"),
                 (1, 1, "left"), (-1, 1, "right"), (1, -1, "left"), (-1, -1, "right"),
                 (0, 2, "center"), (0, -2, "center"), (2, 0, "left"), (-2, 0, "right"),
                 (0, 3, "center"), (0, -3, "center"), (2, 2, "left"), (-2, -2, "right"))


Box = tuple[float, float, float, float]  # left, bottom, right, top, in points


def _overlaps(box: Box, others: list[Box]) -> bool:
    return any(box[0] < o[2] and o[0] < box[2] and box[1] < o[3] and o[1] < box[3] for o in others)


def _inside(box: Box, frame: list[float]) -> bool:
    return frame[0] <= box[0] and box[2] <= frame[2] and frame[1] <= box[1] and box[3] <= frame[3]


def label_without_overlap(axes, x: list[float], y: list[float], radii: list[float], labels: list[str],
                          fontsize: float = 7.5) -> None:
    """Annotate each circle, taking the first offset whose text box hits no circle and no earlier label.

    Offsets are in units of (circle radius + a gap); text boxes are estimated from the character
    count (0.55 em per character). A label placed away from its circle gets a thin leader line.
    """
    axes.autoscale_view()
    to_points = 72.0 / axes.figure.dpi
    centres = [tuple(value * to_points for value in axes.transData.transform((xi, yi))) for xi, yi in zip(x, y)]
    obstacles: list[Box] = [(cx - r, cy - r, cx + r, cy + r) for (cx, cy), r in zip(centres, radii)]
    frame = [value * to_points for value in axes.get_window_extent().extents]  # labels stay inside the axes
    for i in sorted(range(len(labels)), key=lambda i: -y[i]):
        (cx, cy), reach = centres[i], radii[i] + 3.0
        width, height = 0.55 * fontsize * len(labels[i]), 1.2 * fontsize
        candidates = []
        for ux, uy, align in LABEL_OFFSETS:
            dx, dy = ux * reach, uy * reach - (height / 2 if uy == 0 else 0.0) - (height if uy < 0 else 0.0)
            left = cx + dx - {"center": width / 2, "left": 0.0, "right": width}[align]
            candidates.append(((ux, uy), (dx, dy, align), (left, cy + dy, left + width, cy + dy + height)))
        others = obstacles[:i] + obstacles[i + 1:]
        fitting = [c for c in candidates if not _overlaps(c[2], others) and _inside(c[2], frame)]
        (ux, uy), (dx, dy, align), box = (fitting or candidates)[0]
        obstacles.append(box)
        far = not (ux == 0 and abs(uy) == 1)  # only labels right above or below their circle go without a line
        axes.annotate(labels[i], (x[i], y[i]), textcoords="offset points", xytext=(dx, dy), ha=align, va="bottom",
                      fontsize=fontsize, arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.4"} if far else None)


def plot_tradeoff(points: dict[str, EfficiencyPoint], scores: dict[str, float], output: Path, title: str = "") -> list[str]:
    """Draw score vs trainable % (log scale) with circle area ∝ peak memory; returns the recipes drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn = [name for name in points if name in scores]
    skipped_without_score = [name for name in points if name not in scores]
    skipped_without_row = [name for name in scores if name not in points]
    if skipped_without_score:
        print("no score for: " + ", ".join(skipped_without_score))
    if skipped_without_row:
        print("no efficiency row for: " + ", ".join(skipped_without_row))
    if not drawn:
        raise ValueError("no recipe has both an efficiency row and a score; nothing to plot")

    x = [points[name].trainable_percent for name in drawn]
    y = [scores[name] for name in drawn]
    memory = [points[name].peak_memory_mib for name in drawn]
    measured = all(mi is not None for mi in memory)
    figure, axes = plt.subplots(figsize=(7, 4.5))
    areas = marker_areas(memory) if measured else [300.0] * len(drawn)
    axes.scatter(x, y, s=areas, alpha=0.45, edgecolors="black", linewidths=0.6)
    axes.set_xscale("log")
    axes.set_xlabel("trainable parameters (% of the model, log scale)")
    axes.set_ylabel("score")
    axes.set_title(title or ("score vs trainable parameters" + (" (circle area ∝ peak memory)" if measured else "")))
    axes.margins(x=0.25, y=0.2)
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    radii = [math.sqrt(area / math.pi) for area in areas]  # scatter sizes are areas in points²
    labels = [f"{name} ({mi:.0f} MiB)" for name, mi in zip(drawn, memory)] if measured else drawn
    label_without_overlap(axes, x, y, radii, labels)
    write_figure(figure, Path(output))
    plt.close(figure)
    return drawn


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m runners.plot", description=__doc__.split("\n\n")[0])
    parser.add_argument("--efficiency", type=Path, required=True, help="efficiency.csv from runners.efficiency")
    parser.add_argument("--scores", type=Path, required=True, help="CSV with columns recipe,score")
    parser.add_argument("--score-column", default=None, help="default: score, else mean")
    parser.add_argument("--output", type=Path, default=Path("figure1.png"))
    parser.add_argument("--title", default="")
    args = parser.parse_args(argv)
    try:
        check_figure_path(args.output)
        efficiency = read_checked_csv("--efficiency", args.efficiency, load_efficiency_rows, EFFICIENCY_VALID)
        scores = read_checked_csv("--scores", args.scores, load_scores, SCORES_VALID, args.score_column)
    except UsageError as error:
        parser.error(str(error))
    drawn = plot_tradeoff(efficiency, scores, args.output, args.title)
    print(f"plotted {len(drawn)} recipes to {args.output}")


if __name__ == "__main__":
    from runners.command import run_command

    run_command(main)
