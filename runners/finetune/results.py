"""What a run leaves behind: its result (or why it diverged), and results tables in markdown and CSV
(its training log: :mod:`runners.finetune.jsonl_log`).

* :class:`RunResult` — one finished run (task × recipe × seed): its test scores from the best
  validation checkpoint, saved as ``result.json`` in the run's folder.
* :class:`DivergedRun` — a run whose loss or gradient norm became NaN/inf: no score, only why,
  saved as ``diverged.json`` in its folder; the tables list such runs below the scores
  (:func:`diverged_markdown`), so a grid's rate that blows up is a result, not a lost invocation.
* :func:`invalid_markdown` — the cells whose test outputs were not all a label (a number), and how
  many were not: a low score from a model that rarely writes an answer is told from wrong answers.
* :func:`summarize` / :func:`markdown_table` / :func:`csv_table` — runs grouped by recipe and task,
  mean ± sample standard deviation over seeds, laid out as in the paper's Table 1: one row per
  recipe, one column per task, a task's metrics joined by "/" (e.g. MRPC "F1/accuracy").

``python -m runners.finetune.results DIR [DIR ...]`` collects every ``result.json`` under the folders and
prints (and with ``--write`` saves) the combined table, e.g. after running several recipes. For a
sweep's runs (``--sweep``, ``--paper-search``; finished or not), ``python -m runners.finetune.sweep
DIR [DIR ...]`` prints what the sweep itself prints at its end: the setting chosen on validation
for each recipe and task, then every setting.

>>> runs = [RunResult("rte", "compacter++", seed, {"accuracy": acc}, trainable_parameters=1000, trainable_percent=0.5)
...         for seed, acc in ((1, 70.0), (2, 72.0))]
>>> print(markdown_table(summarize(runs)))
| recipe | trainable params | RTE (accuracy) | avg |
| --- | --- | --- | --- |
| compacter++ | 1,000 (0.5000%) | 71.0 ± 1.4 | 71.0 |
>>> print(csv_table(summarize(runs)).splitlines()[1])
compacter++,rte,accuracy,71.0,1.414214,2,70.0 72.0,1000,0.5
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar, TypeVar

from runners.errors import UsageError
from runners.output_folder import check_output_path, write_text

from .run_records import check_run_folders, found, numbers_as_numbers, one_per_run  # noqa: F401 (also from here)

RESULT_FILE = "result.json"
DIVERGED_FILE = "diverged.json"
TASK_TITLES = {"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "qqp": "QQP", "stsb": "STS-B", "mnli": "MNLI",
               "qnli": "QNLI", "rte": "RTE", "boolq": "BoolQ", "cb": "CB", "copa": "COPA", "multirc": "MultiRC",
               "record": "ReCoRD", "wic": "WiC", "embedded": "embedded"}


_Record = TypeVar("_Record", bound="RunRecord")


class RunRecord:
    """What a run leaves in its folder about itself (one JSON file, `FILE`): `RunResult` or `DivergedRun`.
    Both name the run by task, recipe (its table row), setting and seed."""

    FILE: ClassVar[str]
    recipe: str
    setting: str

    @property
    def label(self) -> str:
        """The recipe, with its setting in brackets when it has one: ``compacter [lr=3e-3]``."""
        return f"{self.recipe} [{self.setting}]" if self.setting else self.recipe

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / self.FILE
        write_text(path, json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls: type[_Record], path: str | Path) -> _Record:
        """The record in `path`; one that cannot be read, or is no record of this kind: UsageError naming it."""
        try:
            fields = json.loads(Path(path).read_text(encoding="utf-8"))
            if not isinstance(fields, dict):
                raise TypeError(f"a JSON object expected, found a {type(fields).__name__}")
            return cls(**fields)
        except (OSError, ValueError, TypeError) as error:
            raise UsageError(f"{path}: not a readable {cls.FILE} of runners.finetune ({error})") from None


@dataclass
class RunResult(RunRecord):
    """One finished run: test scores of the checkpoint with the best validation score."""

    FILE: ClassVar[str] = RESULT_FILE
    task: str
    recipe: str
    seed: int
    test: dict[str, float]
    validation: dict[str, float] = field(default_factory=dict)
    best_epoch: int | None = None
    epochs: int | None = None
    train_examples: int | None = None
    trainable_parameters: int | None = None
    trainable_percent: float | None = None
    seconds: float | None = None
    output_dir: str | None = None
    setting: str = ""                       # the --sweep/--set overrides of this run ('' for none)
    invalid_test_percent: float | None = None  # test outputs that are no label (no number), 0..100

    @property
    def scores(self) -> str:
        """The test scores on one line, and how many outputs were no valid answer when some were.

        >>> RunResult("stsb", "bitfit", 1, {"pearson": 3.62, "spearman": 5.4}, invalid_test_percent=12.0).scores
        'pearson 3.6 spearman 5.4, 12.0 % of the outputs no valid answer'
        """
        scores = " ".join(f"{name} {value:.1f}" for name, value in self.test.items())
        return scores + (f", {self.no_answer_note}" if self.no_answer_note else "")

    @classmethod
    def load(cls, path: str | Path) -> RunResult:
        """The run's ``result.json``; one written before it kept the invalid-output share (2026-12-05)
        gets it from the predictions beside it (`runners.finetune.invalid_share`), or None if they are gone."""
        result = super().load(path)
        if result.invalid_test_percent is None:
            from .invalid_share import share_from_predictions

            result.invalid_test_percent = share_from_predictions(Path(path).parent)
        return result

    @property
    def no_answer_note(self) -> str:
        """``"12.0 % of the outputs no valid answer"``; '' when every output was one (or it was not recorded)."""
        return f"{self.invalid_test_percent:.1f} % of the outputs no valid answer" if self.invalid_test_percent else ""


@dataclass
class DivergedRun(RunRecord):
    """A run that stopped on a non-finite loss or gradient norm: what it was and why, no score.

    >>> run = DivergedRun("rte", "adapter", 42, "non-finite training loss nan at step 3 (epoch 1)", "lr=3e-1")
    >>> run.label
    'adapter [lr=3e-1]'
    """

    FILE: ClassVar[str] = DIVERGED_FILE
    task: str
    recipe: str
    seed: int
    reason: str
    setting: str = ""


def diverged_markdown(runs: Sequence[DivergedRun]) -> str:
    """The section that lists diverged runs under a table ('' when there are none).

    >>> print(diverged_markdown([DivergedRun("rte", "adapter", 42, "non-finite gradient norm inf at step 36", "lr=3e-1")]))
    <BLANKLINE>
    ## Diverged (no score)
    <BLANKLINE>
    | recipe | task | seed | why |
    | --- | --- | --- | --- |
    | adapter [lr=3e-1] | rte | 42 | non-finite gradient norm inf at step 36 |
    """
    if not runs:
        return ""
    lines = ["", "## Diverged (no score)", "", "| recipe | task | seed | why |", "| --- | --- | --- | --- |"]
    lines += [f"| {run.label} | {run.task} | {run.seed} | {run.reason} |" for run in runs]
    return "\n".join(lines)


def invalid_markdown(results: Sequence[RunResult]) -> str:
    """The section that lists, under a table, the recipes whose test outputs were not always a valid
    answer (a label; a number for a correlation task): one row a recipe, one column a task, the mean
    share over the seeds that recorded it (runs from before it was kept: from their predictions,
    `runners.finetune.invalid_share`). '' when every output was valid, or no run recorded it.

    >>> runs = [RunResult(task, "prompt-tuning", seed, {"pearson": 1.0}, invalid_test_percent=share)
    ...         for task, seed, share in (("stsb", 1, 20.0), ("stsb", 2, 30.0), ("rte", 1, 0.0))]
    >>> print(invalid_markdown(runs + [RunResult("rte", "adapter", 1, {"accuracy": 60.0}, invalid_test_percent=0.0)]))
    <BLANKLINE>
    ## Test outputs that are no valid answer (scored as wrong)
    <BLANKLINE>
    Percent of the test outputs, mean over the seeds that recorded it; recipes whose outputs were all valid are left out.
    <BLANKLINE>
    | recipe | stsb | rte | seeds |
    | --- | --- | --- | --- |
    | prompt-tuning | 25.0 | 0 | 1-2 |
    """
    shares: dict[str, dict[str, list[float]]] = {}
    tasks: dict[str, None] = {}
    for result in results:
        if result.invalid_test_percent is not None:
            shares.setdefault(result.label, {}).setdefault(result.task, []).append(result.invalid_test_percent)
            tasks.setdefault(result.task)

    def cell(values: list[float] | None) -> str:
        if not values:
            return "—"
        mean = statistics.fmean(values)
        return f"{mean:.1f}" if mean > 0 else "0"

    def seeds(by_task: dict[str, list[float]]) -> str:
        counts = sorted({len(values) for values in by_task.values()})
        return str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"

    lines = [f"| {label} | " + " | ".join(cell(by_task.get(task)) for task in tasks) + f" | {seeds(by_task)} |"
             for label, by_task in shares.items() if any(statistics.fmean(v) > 0 for v in by_task.values())]
    if not lines:
        return ""
    return "\n".join(["", "## Test outputs that are no valid answer (scored as wrong)", "",
                      "Percent of the test outputs, mean over the seeds that recorded it; recipes whose outputs "
                      "were all valid are left out.", "",
                      "| recipe | " + " | ".join(tasks) + " | seeds |", "| --- |" + " --- |" * (len(tasks) + 1), *lines])


def below_table(results: Sequence[RunResult], diverged: Sequence[DivergedRun]) -> str:
    """What every results table is followed by, each section after a blank line: the cells with invalid
    outputs, then the diverged runs ('' when there are neither)."""
    return "".join("\n" + section for section in (invalid_markdown(results), diverged_markdown(diverged)) if section)


@dataclass
class Cell:
    """Mean and spread of one metric of one (recipe, task) over its seeds."""

    metric: str
    values: list[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0


@dataclass
class SummaryRow:
    """One (recipe, setting, task): its test metric cells in the task's order, over `seeds`, and the
    validation scores of the same checkpoints (those that picked them)."""

    recipe: str
    task: str
    cells: list[Cell]
    seeds: list[int]
    trainable_parameters: int | None
    trainable_percent: float | None
    setting: str = ""
    validation: list[Cell] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.recipe} [{self.setting}]" if self.setting else self.recipe

    @property
    def task_score(self) -> float:
        """The task's single number (mean of its metrics), as averaged in the paper's last column."""
        return statistics.fmean(cell.mean for cell in self.cells)


def summarize(results: Iterable[RunResult]) -> list[SummaryRow]:
    """Group runs by (recipe, setting, task), keeping first-seen order; mean ± std over seeds per metric."""
    groups: dict[tuple[str, str, str], list[RunResult]] = {}
    for result in results:
        groups.setdefault((result.recipe, result.setting, result.task), []).append(result)
    rows = []
    for (recipe, setting, task), runs in groups.items():
        metrics = list(runs[0].test)
        cells = [Cell(metric, [run.test[metric] for run in runs if metric in run.test]) for metric in metrics]
        validation = [Cell(metric, [run.validation[metric] for run in runs if metric in run.validation])
                      for metric in runs[0].validation]
        rows.append(SummaryRow(recipe, task, cells, [run.seed for run in runs], runs[0].trainable_parameters,
                               runs[0].trainable_percent, setting, validation))
    return rows


def _number(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.1f}"


def format_cells(cells: Sequence[Cell]) -> str:
    """'90.2/86.3' for one seed, '90.2/86.3 ± 0.4/0.6' for several (as in the paper's tables)."""
    text = "/".join(_number(cell.mean) for cell in cells)
    if any(len(cell.values) > 1 for cell in cells):
        text += " ± " + "/".join(_number(cell.std) for cell in cells)
    return text


def markdown_table(rows: Sequence[SummaryRow], with_validation: bool = False) -> str:
    """Recipes (with their setting) as rows, tasks as columns; `avg` is the mean of the per-task scores.

    `with_validation` adds each cell's validation score in brackets: ``71.0 (val 72.5)``.
    """
    tasks = list(dict.fromkeys(row.task for row in rows))
    recipes = list(dict.fromkeys(row.label for row in rows))
    by_key = {(row.label, row.task): row for row in rows}
    headers = ["recipe", "trainable params"]
    for task in tasks:
        example = next(row for row in rows if row.task == task)
        headers.append(f"{TASK_TITLES.get(task, task)} ({'/'.join(cell.metric for cell in example.cells)})")
    headers.append("avg")
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    for recipe in recipes:
        present = [by_key[(recipe, task)] for task in tasks if (recipe, task) in by_key]
        first = present[0]
        params = "—" if first.trainable_parameters is None else f"{first.trainable_parameters:,}"
        if first.trainable_percent is not None:
            params += f" ({first.trainable_percent:.4f}%)"
        cells = [_cell_text(by_key[(recipe, task)], with_validation) if (recipe, task) in by_key else "—" for task in tasks]
        average = _number(statistics.fmean(row.task_score for row in present))
        lines.append("| " + " | ".join([recipe, params, *cells, average]) + " |")
    return "\n".join(lines)


def _cell_text(row: SummaryRow, with_validation: bool) -> str:
    text = format_cells(row.cells)
    if with_validation and row.validation:
        text += f" (val {'/'.join(_number(cell.mean) for cell in row.validation)})"
    return text


CSV_COLUMNS = ("recipe", "task", "metric", "mean", "std", "seeds", "values", "trainable_parameters", "trainable_percent")
# A sweep's table also says which setting each line is, its validation mean and whether it was selected.
SWEEP_CSV_COLUMNS = CSV_COLUMNS + ("setting", "validation_mean", "selected")


def csv_table(rows: Sequence[SummaryRow], selected: set[tuple[str, str, str]] | None = None) -> str:
    """One line per (recipe, task, metric): mean, sample std, number of seeds and the raw values.

    With `selected` (the (recipe, setting, task) chosen by validation, see `runners.finetune.sweep`),
    the sweep's columns follow.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS if selected is None else SWEEP_CSV_COLUMNS)
    for row in rows:
        validation = {cell.metric: cell.mean for cell in row.validation}
        for cell in row.cells:
            line = [row.recipe, row.task, cell.metric, round(cell.mean, 6), round(cell.std, 6), len(cell.values),
                    " ".join(str(round(v, 6)) for v in cell.values),
                    "" if row.trainable_parameters is None else row.trainable_parameters,
                    "" if row.trainable_percent is None else round(row.trainable_percent, 6)]
            if selected is not None:
                mean = validation.get(cell.metric)
                line += [row.setting, "" if mean is None else round(mean, 6),
                         int((row.recipe, row.setting, row.task) in selected)]
            writer.writerow(line)
    return buffer.getvalue()


def write_tables(results: Sequence[RunResult], folder: str | Path, stem: str = "results",
                 diverged: Sequence[DivergedRun] = ()) -> tuple[Path, Path]:
    """Write `<stem>.md` (with the `diverged` runs listed below the table) and `<stem>.csv` into `folder`;
    returns their paths."""
    folder = Path(folder)
    rows = summarize(results)
    markdown, comma_separated = folder / f"{stem}.md", folder / f"{stem}.csv"
    write_text(markdown, markdown_table(rows) + below_table(results, diverged) + "\n")
    write_text(comma_separated, csv_table(rows))
    return markdown, comma_separated


def collect(folders: Iterable[str | Path]) -> list[RunResult]:
    """Every `result.json` below the given folders, in path order with numbers compared as numbers.

    So a sweep's settings come in the order of an ascending grid, as the paper's are (``lr=3e-5``
    before ``lr=3e-4``, ``seed-9`` before ``seed-42``), and a tie on validation goes to the same
    setting as in the sweep's own table (the first of the grid).

    >>> sorted(["lr=3e-4", "lr=3e-5", "lr=3e-2"], key=numbers_as_numbers)
    ['lr=3e-5', 'lr=3e-4', 'lr=3e-2']
    """
    return [record for _, record in found(folders, RunResult)]


def read_folders(argv: list[str] | None, prog: str, description: str,
                 folders_help: str) -> tuple[argparse.Namespace, list[RunResult], list[DivergedRun]]:
    """The command line of the table commands (this one and ``runners.finetune.sweep``): ``FOLDER ...
    [--write DIR]``, and the finished and the diverged runs under the folders. None finished, or one run
    found twice (`one_per_run`): one line, SystemExit(2)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("folders", nargs="+", type=Path, help=folders_help)
    parser.add_argument("--write", type=Path, metavar="DIR", help="also write results.md and results.csv into DIR")
    args = parser.parse_args(argv)
    try:
        check_run_folders(args.folders, folders_help)
        if args.write:
            check_output_path(args.write, "--write", "a folder, new or not, for results.md and results.csv")
        finished, diverged = found(args.folders, RunResult), found(args.folders, DivergedRun)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    if not finished:
        print(f"error: no {RESULT_FILE} found under {', '.join(map(str, args.folders))}", file=sys.stderr)
        raise SystemExit(2)
    one_per_run(finished + diverged)
    return args, [record for _, record in finished], [record for _, record in diverged]


def say_written(paths: list[Path]) -> None:
    for path in paths:
        print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    args, results, diverged = read_folders(argv, "python -m runners.finetune.results",
                                           "Combine the result.json files of finished runs into one table.",
                                           "output folders of runners.finetune")
    print(markdown_table(summarize(results)) + below_table(results, diverged))
    if any(result.setting for result in results):
        print(f"\nnote: these are a sweep's runs; python -m runners.finetune.sweep {' '.join(map(str, args.folders))} "
              "prints the setting chosen on validation")
    if args.write:
        say_written(write_tables(results, args.write, diverged=diverged))
    return 0


if __name__ == "__main__":
    sys.exit(main())
