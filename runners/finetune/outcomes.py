"""The end of an invocation: its runs' outcomes become the tables, the printed summary and the exit code.

    report_outcomes(jobs, outcomes, settings, is_main, say)
      ├─ a run stopped (interrupt, --stop-after-steps)?  → 130, or 0 for --stop-after-steps: no tables
      ├─ every run diverged?  → UsageError naming the first one's folder and step (exit 2, one line)
      ├─ results.md / results.csv (a sweep's: the choice on validation, then every setting), the
      │  diverged runs listed under the table; figure1.png for several recipes; printed
      └─ some run diverged?  → UsageError after the tables (exit 2), else 0

A diverged run (`DivergedRun`: its loss or gradient norm became NaN/inf) is one run's result: the
invocation's other runs were trained and are tabulated, and a sweep chooses among them.
"""

from __future__ import annotations

from typing import Any

from .figure import write_figure
from .invocation import EXIT_INTERRUPTED, Say, Settings, UsageError
from .jobs import Job, is_sweep
from .results import (DIVERGED_FILE, RESULT_FILE, DivergedRun, RunResult, below_table, markdown_table, summarize,
                      write_tables)
from .sweep import sweep_markdown, write_sweep_tables


def report_outcomes(jobs: list[Job], outcomes: list[tuple[Any, str | None]], settings: Settings, is_main: bool,
                    say: Say) -> int:
    """Tables and exit code of the invocation's `outcomes` ((result, None), (DivergedRun, None) or
    (None, why it stopped)), one per job in order; raises UsageError when a run diverged."""
    results: list[RunResult] = []
    diverged: list[tuple[DivergedRun, str]] = []  # with the run's folder, relative to the output folder
    for job, (result, stop_reason) in zip(jobs, outcomes):
        if result is None:
            return EXIT_INTERRUPTED if stopped_by_signal((result, stop_reason)) else 0
        if isinstance(result, DivergedRun):
            diverged.append((result, job.run_dir(settings.output_dir).relative_to(settings.output_dir).as_posix()))
        else:
            results.append(result)
    if not results:  # nothing to tabulate: the first divergence is the invocation's error
        (first, folder), more = diverged[0], len(diverged) - 1
        raise UsageError(f"run {folder}: {first.reason}" + (f" ({more} more runs diverged too)" if more else ""))
    write_and_print_tables(results, [run for run, _ in diverged], settings, is_main, say)
    if diverged:
        raise UsageError(f"{len(diverged)} of {len(outcomes)} runs diverged (non-finite loss or gradient norm; listed "
                         f"under the table and in their folders' {DIVERGED_FILE}); a smaller --lr may train them")
    return 0


def stopped_by_signal(outcome: tuple[Any, str | None]) -> bool:
    """Whether a run's (result, why it stopped) says a signal stopped it, not --stop-after-steps.

    >>> stopped_by_signal((None, "SIGINT")), stopped_by_signal((None, "--stop-after-steps 30"))
    (True, False)
    """
    result, stop_reason = outcome
    return result is None and not (stop_reason or "").startswith("--stop-after-steps")


def write_and_print_tables(results: list[RunResult], diverged: list[DivergedRun], settings: Settings, is_main: bool,
                           say: Say) -> None:
    sweep = is_sweep(settings.options)
    markdown, csv_path = (None, None)
    if is_main:
        markdown, csv_path = (write_sweep_tables if sweep else write_tables)(results, settings.output_dir,
                                                                             diverged=diverged)
    say("\nResults (test split, checkpoint with the best validation score; mean ± std over seeds):\n")
    say((sweep_markdown(results) if sweep else markdown_table(summarize(results))) + below_table(results, diverged))
    if len(results) == 1 and not diverged:
        say("\n" + headline(results[0]))
    if markdown is not None:
        figure = None if sweep else write_figure(results, settings.output_dir)
        also = f", {figure}" if figure is not None else ""
        say(f"\nwrote {markdown}, {csv_path}{also}, and per run: log.jsonl, best/, last/, {RESULT_FILE}")


def headline(result: RunResult) -> str:
    """One line for a single run: how far it got, next to how little of the model it trained.

    >>> print(headline(RunResult("embedded-sst2", "compacter++", 1, {"accuracy": 81.25},
    ...                          trainable_parameters=2736, trainable_percent=0.0556)))
    compacter++ on embedded-sst2: test accuracy 81.2, training 2,736 parameters (0.0556 % of the model)
    >>> print(headline(RunResult("world2-stsb", "bitfit", 1, {"pearson": 3.6}, invalid_test_percent=12.0)))
    bitfit on world2-stsb: test pearson 3.6 (12.0 % of the outputs no valid answer)
    """
    scores = ", ".join(f"{metric} {value:.1f}" for metric, value in result.test.items())
    if result.no_answer_note:
        scores += f" ({result.no_answer_note})"
    share = "" if result.trainable_parameters is None else (
        f", training {result.trainable_parameters:,} parameters"
        + ("" if result.trainable_percent is None else f" ({result.trainable_percent:.3g} % of the model)"))
    return f"{result.recipe} on {result.task}: test {scores}{share}"
