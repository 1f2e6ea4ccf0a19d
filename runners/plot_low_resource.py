"""A Figure-4-style plot: score against the number of training examples, one line per recipe.

    python -m runners.plot_low_resource OUT [OUT ...] --output figure4.png [--table figure4.md]
                                        [--recipe compacter++,full-finetune]

Reads every ``result.json`` below the given output folders of ``runners.finetune`` (runs made
with ``--low-resource N``, or on a whole training set: a Table 1 folder gives the point of its
size), and for each recipe and training-set size averages the task scores of each seed over the
tasks (as the paper averages GLUE), then plots the mean over seeds with its sample standard
deviation as error bars. A run's task score is the mean of its test metrics. ``--table`` also
writes the points as a markdown table; ``--recipe`` keeps only the named recipes. The same task,
recipe, size and seed found twice (two folders holding the same run) is refused, not averaged in.

>>> from runners.finetune.results import RunResult
>>> runs = [RunResult(task, "compacter++", seed, {"accuracy": score}, train_examples=100)
...         for task, seed, score in (("a", 1, 60.0), ("b", 1, 80.0), ("a", 2, 70.0), ("b", 2, 90.0))]
>>> curves(runs)["compacter++"]
[(100, 75.0, 7.0710678118654755, 2)]
>>> print(markdown(curves(runs)))
| training examples per task | 100 |
| --- | --- |
| compacter++ | 75.0 ± 7.1 (2 seeds) |
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from runners.errors import UsageError
from runners.figure_file import check_figure_path, write_figure
from runners.finetune.arguments import comma_list
from runners.finetune.results import RunResult, collect
from runners.finetune.run_records import check_run_folders
from runners.output_folder import check_output_file, write_text

Curves = dict[str, list[tuple[int, float, float, int]]]


class DuplicateRun(ValueError):
    """The same (recipe, task, training-set size, seed) appears in two result files."""


def curves(results: Iterable[RunResult]) -> Curves:
    """recipe → [(train examples, mean over seeds, std over seeds, seeds)], sizes ascending."""
    per_seed: dict[tuple[str, int, int], list[float]] = defaultdict(list)
    seen: set[tuple[str, str, int, int]] = set()
    for result in results:
        if result.train_examples is None or not result.test:
            continue
        key = (result.recipe, result.task, result.train_examples, result.seed)
        if key in seen:
            raise DuplicateRun(f"{result.recipe} on {result.task} with {result.train_examples} examples, seed "
                               f"{result.seed}, is in two result files (a copy of one run, or two runs of it); "
                               "give each run once")
        seen.add(key)
        per_seed[(result.recipe, result.train_examples, result.seed)].append(statistics.fmean(result.test.values()))
    averaged: dict[tuple[str, int], list[float]] = defaultdict(list)
    for (recipe, size, _), task_scores in per_seed.items():
        averaged[(recipe, size)].append(statistics.fmean(task_scores))
    lines: Curves = defaultdict(list)
    for (recipe, size), scores in sorted(averaged.items(), key=lambda item: (item[0][0], item[0][1])):
        spread = statistics.stdev(scores) if len(scores) > 1 else 0.0
        lines[recipe].append((size, statistics.fmean(scores), spread, len(scores)))
    return dict(lines)


def _point(mean: float, spread: float, seeds: int) -> str:
    return f"{mean:.1f} ± {spread:.1f} ({seeds} seed{'s' if seeds > 1 else ''})"


def markdown(lines: Curves) -> str:
    """The points as a table: one row per recipe, one column per training-set size."""
    sizes = sorted({size for points in lines.values() for size, *_ in points})
    rows = ["| training examples per task | " + " | ".join(f"{size:,}" for size in sizes) + " |",
            "| --- | " + " | ".join("---" for _ in sizes) + " |"]
    for recipe, points in lines.items():
        by_size = {size: _point(mean, spread, seeds) for size, mean, spread, seeds in points}
        rows.append(f"| {recipe} | " + " | ".join(by_size.get(size, "") for size in sizes) + " |")
    return "\n".join(rows)


def plot(lines: Curves, output: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for recipe, points in lines.items():
        sizes, means, spreads = zip(*[(size, mean, spread) for size, mean, spread, _ in points])
        axes.errorbar(sizes, means, yerr=spreads, marker="o", capsize=3, label=recipe)
    axes.set_xscale("log")
    axes.set_xlabel("training examples per task")
    axes.set_ylabel("average test score")
    axes.set_title(title or "Low-resource fine-tuning (mean ± std over seeds)")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    write_figure(figure, Path(output))
    plt.close(figure)


def check_paths(folders: list[Path], output: Path, table: Path | None) -> None:
    """Refuse, before any work, a folder that is not there and an output that cannot be written."""
    check_run_folders(folders, "output folders of runners.finetune")
    check_figure_path(output)
    if table is not None:
        check_output_file(table, "--table", "figure4.md")
        if table.resolve() == output.resolve():
            raise UsageError(f"--table {table} is also the --output figure; give another path")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runners.plot_low_resource", description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="output folders of runners.finetune --low-resource runs")
    parser.add_argument("--output", type=Path, default=Path("figure4.png"))
    parser.add_argument("--table", type=Path, help="also write the points as a markdown table to this file")
    parser.add_argument("--recipe", help="only these recipes, comma-separated (default: every recipe found)")
    parser.add_argument("--title", default="")
    args = parser.parse_args(argv)
    try:
        check_paths(args.folders, args.output, args.table)
        wanted = set(comma_list("--recipe", args.recipe)) if args.recipe else None
        lines = curves(result for result in collect(args.folders) if wanted is None or result.recipe in wanted)
    except (UsageError, DuplicateRun) as error:
        parser.error(str(error))
    missing = sorted(wanted - set(lines)) if wanted else []
    if not lines or missing:
        which = f" of {', '.join(missing)}" if missing else ""
        found = f" (found: {', '.join(lines)})" if lines else ""
        parser.error(f"no result.json{which} with a training-set size under {', '.join(map(str, args.folders))}{found}")
    for recipe, points in lines.items():
        print(f"{recipe}: " + ", ".join(f"{size}: {_point(mean, spread, seeds)}"
                                        for size, mean, spread, seeds in points))
    plot(lines, args.output, args.title)
    print(f"wrote {args.output}")
    if args.table:
        write_text(args.table, markdown(lines) + "\n")
        print(f"wrote {args.table}")
    return 0


if __name__ == "__main__":
    from runners.command import run_command

    run_command(main)
