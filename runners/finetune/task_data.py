"""The tasks of an invocation and their rows; what each run folder says of its task and test rows.

* :func:`resolve_tasks` — the registry's tasks named by ``--task``, or the task of one's own files
  (``--train-file``; `runners.tasks.own_data`), read and checked in full before any model loads;
* :func:`load_data` — every task's train/validation/test rows;
* :func:`write_task_record` — ``task.json`` (`runners.tasks.task_record`), what `runners.predict` needs;
* :func:`write_test_predictions` — ``test_predictions.jsonl``: per test row, in order, the
  prediction (a label word), the gold value and the row's other columns.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .atomic import write_text
from .errors import UsageError

__all__ = ["PREDICTIONS_FILE", "resolve_tasks", "task_named", "load_data", "prediction_rows", "run_task_record",
           "write_task_record", "write_test_predictions"]

PREDICTIONS_FILE = "test_predictions.jsonl"
# One's own data, read once per process: (the options that name it) -> (task, splits, note).
_OWN_DATA: dict[str, tuple[Any, dict[str, list[dict]], str | None]] = {}


def _own_data(options: dict[str, Any]) -> tuple[Any, dict[str, list[dict]], str | None]:
    from runners.tasks.data import DataError
    from runners.tasks.own_data import load_own_data, own_data_options

    arguments = own_data_options(options)
    key = json.dumps(arguments, sort_keys=True, default=str)
    if key not in _OWN_DATA:
        try:
            _OWN_DATA[key] = load_own_data(**arguments)
        except DataError as error:
            raise UsageError(str(error)) from None
    return _OWN_DATA[key]


def resolve_tasks(names: Sequence[str], options: dict[str, Any], notes: list[str]) -> list[tuple[str, Any]]:
    """``(name, task)`` per name; with --train-file the own-data task (its note, if any, added to `notes`)."""
    from runners.tasks import get_task

    if options.get("train_file") is not None:
        task, _, note = _own_data(options)
        if note and note not in notes:
            notes.append(note)
        return [(task.name, task)]
    try:
        return [(name, get_task(name)) for name in names]
    except ValueError as error:  # unknown task: get_task's message names the closest one
        raise UsageError(str(error)) from None


def task_named(name: str, options: dict[str, Any]):
    """The task of a planned run, in a worker process too."""
    return resolve_tasks([name], options, [])[0][1]


def load_data(tasks: list[Any], options: dict[str, Any], tokenizer=None) -> dict[str, dict[str, list[dict]]]:
    """Every task's splits (a bad data file is a UsageError naming it; so is a `tokenizer` that cannot encode them)."""
    from runners.tasks.data import DataError, load_task_splits
    from runners.tasks.own_data import OwnDataTask

    from .model import ModelLoadError, check_task_tokenizer

    data: dict[str, dict[str, list[dict]]] = {}
    for task in tasks:
        try:
            if isinstance(task, OwnDataTask):
                data[task.name] = _own_data(options)[1]
            else:
                data[task.name] = load_task_splits(task, options.get("data_dir"), seed=options.get("split_seed") or 42)
            check_task_tokenizer(tokenizer, task, data[task.name]["train"], options.get("model"))
        except (DataError, ModelLoadError) as error:
            raise UsageError(str(error)) from None
    return data


def _label_column(task) -> str:
    return getattr(task, "label_column", "label")


def prediction_rows(task, rows: Sequence[dict], predictions: Sequence[str], with_gold: bool = True) -> list[dict]:
    """One object per row: its columns (a label column left out when `with_gold`), ``prediction`` and ``gold``.

    The gold value is the label word the model should write (regression: the number itself). When
    the task has the model write a rationale before the label (world 2's), ``prediction`` is the label
    and ``predicted_rationale`` what came before it. A column called ``prediction`` or ``gold`` keeps
    its value as ``input_prediction`` / ``input_gold``.

    >>> from runners.tasks import get_task
    >>> prediction_rows(get_task("sst2"), [{"sentence": "Good.", "label": 1, "prediction": "x"}], ["negative"])
    [{'sentence': 'Good.', 'input_prediction': 'x', 'prediction': 'negative', 'gold': 'positive'}]
    """
    label = _label_column(task)
    ours = ("prediction", "gold") if with_gold else ("prediction",)
    regression = task.target_kind == "number"
    objects = []
    for row, prediction in zip(rows, predictions, strict=True):
        line = {(f"input_{key}" if key in ours else key): value for key, value in row.items()
                if not (with_gold and key == label)}
        rationale, line["prediction"] = task.split_prediction(prediction)
        if rationale is not None:  # the model wrote "<rationale> ; <label>": the label is the prediction
            line["predicted_rationale"] = rationale
        if with_gold:
            line["gold"] = row[label] if regression else task.format_target(task, row)
        objects.append(line)
    return objects


def jsonl(objects: Sequence[dict]) -> str:
    return "".join(json.dumps(item, ensure_ascii=False, default=str) + "\n" for item in objects)


def write_test_predictions(run_dir: Path, task, rows: Sequence[dict], predictions: Sequence[str]) -> Path:
    """``run_dir/test_predictions.jsonl``, written whole (never half)."""
    path = Path(run_dir) / PREDICTIONS_FILE
    write_text(path, jsonl(prediction_rows(task, rows, predictions)))
    return path


def run_task_record(task, config, options: dict[str, Any], seed: int, recipe_name: str,
                    precision: str = "no") -> dict[str, Any]:
    """task.json of a run (`config` its TrainConfig): the task's input format and labels, the lengths, the
    base it trained on (the embedded model when ``model`` is None; a random-init base is rebuilt from its seed)
    and the autocast `precision` it evaluated under ("no", "bf16" or "fp16"; runners.predict uses the same)."""
    from runners.tasks.task_record import task_record

    base = {"model": options.get("model"), "random_init": bool(options.get("random_init")),
            "init_config": options.get("init_config") or [], "seed": seed}
    return task_record(task, max_source_length=config.max_source_length, max_target_length=config.max_target_length,
                       recipe=recipe_name, base=base, precision=precision)


def write_task_record(folder: Path, record: dict[str, Any]) -> Path:
    """``folder/task.json``: the task's input format, label set and base (runners.tasks.task_record)."""
    from runners.tasks.task_record import TASK_RECORD_FILE

    path = Path(folder) / TASK_RECORD_FILE
    write_text(path, json.dumps(record, indent=2, default=str) + "\n")
    return path
