"""The end of a completed run: its test score said, its test predictions and then ``result.json`` written.

``result.json`` is written last: a run folder that has it is complete, and ``--resume`` reuses it.
"""

from __future__ import annotations

from pathlib import Path

from .invocation import Say
from .jobs import Job
from .results import RunResult
from .task_data import write_test_predictions
from .training import TrainConfig


def finish_run(task, job: Job, splits: dict[str, list[dict]], config: TrainConfig, report, outcome, run_dir: Path,
               accelerator, say: Say, setting: str | None = None) -> RunResult:
    """Say the test score, write the test predictions and then result.json (which marks the run complete).
    `setting` is what the results table shows beside the recipe (default: the job's --sweep/--set label)."""
    best = outcome.progress
    assert outcome.test is not None
    invalid = None if outcome.test_predictions is None else task.invalid_percent(outcome.test_predictions)
    result = RunResult(task=task.name, recipe=job.row_label, seed=job.seed, test=outcome.test,
                       validation=best.best_validation or {}, best_epoch=best.best_epoch, epochs=config.epochs,
                       train_examples=len(splits["train"]), trainable_parameters=report.trainable,
                       trainable_percent=report.percent, seconds=round(outcome.seconds, 3), output_dir=str(run_dir),
                       setting=job.setting.label if setting is None else setting, invalid_test_percent=invalid)
    say(f"test {result.scores} (checkpoint of epoch {best.best_epoch}, validation "
        f"{' '.join(f'{k} {v:.1f}' for k, v in (best.best_validation or {}).items())}) — {outcome.seconds:.1f} s")
    if accelerator.is_main_process:
        if outcome.test_predictions is not None:
            write_test_predictions(run_dir, task, splits["test"], outcome.test_predictions)
        result.save(run_dir)  # last: a run with result.json is complete
    return result
