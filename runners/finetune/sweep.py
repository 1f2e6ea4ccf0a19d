"""A sweep's outcome: for each (recipe, task) the setting with the best validation score, and its test score.

The paper's protocol (§5, appendix A): "report the results for the hyper-parameters performing
the best on the validation set". A setting's validation score is the mean over its seeds of the
task's summary score (`Task.summary_score`, the mean of its metrics) of each run's best
validation checkpoint; test scores are never read to choose. Ties go to the setting that came
first in the grid.

>>> from runners.finetune.results import RunResult
>>> runs = [RunResult("rte", "adapter", 42, test={"accuracy": test}, validation={"accuracy": val}, setting=setting)
...         for setting, val, test in (("lr=3e-4", 60.0, 80.0), ("lr=3e-3", 70.0, 50.0))]
>>> [(s.setting, s.validation_score, s.test.cells[0].mean) for s in select_by_validation(runs)]
[('lr=3e-3', 70.0, 50.0)]
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from runners.output_folder import write_text
from runners.tasks.registry import TASKS

from .results import (TASK_TITLES, DivergedRun, RunResult, SummaryRow, csv_table, below_table, format_cells,
                      markdown_table, read_folders, say_written, summarize)


@dataclass
class Selection:
    """The setting chosen for one (recipe, task), and the test scores of its runs."""

    recipe: str
    task: str
    setting: str
    validation_score: float
    test: SummaryRow
    candidates: int


def validation_score(result: RunResult) -> float:
    """The task's one number for a run's best validation checkpoint (the mean of its metrics)."""
    if not result.validation:
        return float("-inf")
    task = TASKS.get(result.task)
    if task is not None and all(name in result.validation for name in task.metric_names):
        return task.summary_score(result.validation)
    return statistics.fmean(result.validation.values())


def select_by_validation(results: Sequence[RunResult]) -> list[Selection]:
    """Per (recipe, task), the setting whose runs have the best mean validation score (test unread)."""
    groups: dict[tuple[str, str], dict[str, list[RunResult]]] = {}
    for result in results:
        groups.setdefault((result.recipe, result.task), {}).setdefault(result.setting, []).append(result)
    rows = {(row.recipe, row.setting, row.task): row for row in summarize(results)}
    selections = []
    for (recipe, task), by_setting in groups.items():
        scores = {setting: statistics.fmean(validation_score(run) for run in runs) for setting, runs in by_setting.items()}
        best = max(scores, key=lambda setting: scores[setting])  # the first of equal scores
        selections.append(Selection(recipe, task, best, scores[best], rows[(recipe, best, task)], len(scores)))
    return selections


def selection_table(selections: Sequence[Selection]) -> str:
    """One line per (recipe, task): the chosen setting, its validation score and its test score."""
    lines = ["| recipe | task | setting chosen on validation | validation | test |", "| --- | --- | --- | --- | --- |"]
    for s in selections:
        metrics = "/".join(cell.metric for cell in s.test.cells)
        lines.append(f"| {s.recipe} | {TASK_TITLES.get(s.task, s.task)} ({metrics}) | {s.setting or '—'} "
                     f"(best of {s.candidates}) | {s.validation_score:.1f} | {format_cells(s.test.cells)} |")
    return "\n".join(lines)


def sweep_markdown(results: Sequence[RunResult]) -> str:
    """The selection, then every setting's test score with its validation score."""
    return ("## Chosen on validation\n\n"
            "For each recipe and task, the setting with the best mean validation score, and its test score:\n\n"
            + selection_table(select_by_validation(results))
            + "\n\n## Every setting\n\nTest scores (validation scores in brackets), mean ± std over seeds:\n\n"
            + markdown_table(summarize(results), with_validation=True))


def write_sweep_tables(results: Sequence[RunResult], folder: str | Path, stem: str = "results",
                       diverged: Sequence[DivergedRun] = ()) -> tuple[Path, Path]:
    """`<stem>.md` (selection, grid, and the `diverged` settings listed below) and `<stem>.csv` (the grid,
    with validation and `selected`)."""
    folder = Path(folder)
    selected = {(s.recipe, s.setting, s.task) for s in select_by_validation(results)}
    markdown, comma_separated = folder / f"{stem}.md", folder / f"{stem}.csv"
    write_text(markdown, sweep_markdown(results) + below_table(results, diverged) + "\n")
    write_text(comma_separated, csv_table(summarize(results), selected=selected))
    return markdown, comma_separated


def main(argv: list[str] | None = None) -> int:
    """``python -m runners.finetune.sweep DIR [DIR ...] [--write DIR]``: the choice on validation of the
    runs a sweep has finished so far (after it was stopped, say), as its own ``results.md``. Ties go
    to the smaller value (run folders sorted with numbers as numbers: the first of an ascending grid,
    such as the paper's)."""
    args, results, diverged = read_folders(argv, "python -m runners.finetune.sweep",
                                           "The setting chosen on validation from a sweep's finished runs.",
                                           "output folders of runners.finetune --sweep/--paper-search")
    print(sweep_markdown(results) + below_table(results, diverged))
    if args.write:
        say_written(write_sweep_tables(results, args.write, diverged=diverged))
    return 0


if __name__ == "__main__":
    sys.exit(main())
