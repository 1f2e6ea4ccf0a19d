"""What predicting with a trained adapter needs to know of its task, as JSON (``task.json``).

`runners.finetune` writes the record into every run folder and beside every ``best/`` adapter;
`runners.predict` reads it back, so nobody has to dig the input format out of the registry:

* ``task`` — the registry name, or the own-data task's name (``own_data`` true);
* ``task_type`` — classification, regression or generation;
* ``text_columns`` — the columns written into the source, in order; ``label_column``;
* ``input_template`` — the source with ``{column}`` placeholders, e.g. ``"sst2 sentence: {sentence}"``;
* ``labels`` — the label words a classification task predicts (``None`` otherwise);
* ``rationale_column`` — the column the model writes before the label (``None``: the label alone);
* ``max_source_length`` / ``max_target_length`` — the lengths training used.

>>> from runners.tasks import get_task
>>> record = task_record(get_task("embedded-sst2"))
>>> record["input_template"], record["labels"], record["task_type"]
('sst2 sentence: {sentence}', ['negative', 'positive'], 'classification')
>>> task_from_record(record).name
'embedded-sst2'
"""

from __future__ import annotations

from typing import Any

from .formats import prefixed_columns_source
from .own_data import OwnDataTask, own_task
from .registry import Task, get_task

__all__ = ["TASK_RECORD_FILE", "task_record", "task_from_record"]

TASK_RECORD_FILE = "task.json"


def input_template(task: Task) -> str:
    """The source with a ``{column}`` placeholder per text column (a description for special formats)."""
    if task.format_source is prefixed_columns_source:
        return " ".join([task.prefix or task.name] + [f"{column}: {{{column}}}" for column in task.source_columns])
    return f"{task.name}: see runners.tasks.formats.{task.format_source.__name__} (columns {', '.join(task.source_columns)})"


def task_record(task: Task, **extra: Any) -> dict[str, Any]:
    """The JSON-ready record of `task`; `extra` (lengths, the base model) is added as given."""
    own = isinstance(task, OwnDataTask)
    return {
        "task": task.name, "own_data": own, "task_type": task.task_type,
        "text_columns": list(task.source_columns), "label_column": task.label_column if own else "label",
        "input_template": input_template(task), "labels": list(task.labels) if task.labels is not None else None,
        "value_range": list(task.value_range) if own and task.value_range is not None else None,
        "rationale_column": task.rationale_column,
        **extra,
    }


def task_from_record(record: dict[str, Any]) -> Task:
    """The task a record describes (ValueError naming what is missing or unknown).

    >>> own = task_record(own_task("reviews", ["text"], "stars", "classification", ["1", "2"]))
    >>> task_from_record(own).to_text({"text": "fine", "stars": 2})
    ('reviews text: fine', '2')
    """
    missing = [key for key in ("task", "task_type", "text_columns", "labels") if key not in record]
    if missing:
        raise ValueError(f"the task record lacks {', '.join(missing)}")
    if not record.get("own_data"):
        return get_task(record["task"])
    if record["task_type"] == "classification" and not record["labels"]:
        raise ValueError("the task record of a classification task holds no label set")
    value_range = record.get("value_range")
    return own_task(record["task"], record["text_columns"], record.get("label_column") or "label",
                    record["task_type"], record["labels"], tuple(value_range) if value_range else None)
