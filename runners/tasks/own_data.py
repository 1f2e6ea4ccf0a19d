"""A task made from one's own files: ``--train-file``, ``--validation-file``, ``--test-file``.

The conventions of transformers' example scripts: csv, tsv, json, jsonl or parquet files, one or
two text columns (``--text-column A[,B]``), a label column (``--label-column L``) and a task type:

==============  ===========================================  ====================================
task type       target (T5 text-to-text)                     metrics (0..100)
==============  ===========================================  ====================================
classification  the label as a word: ``"positive"``, ``"3"``  accuracy, macro-F1
regression      the number as written: ``"4.25"``              Pearson, Spearman
generation      the label column's text                      exact match
==============  ===========================================  ====================================

The source is T5's GLUE format, ``"<task> <column>: <value> ..."``, with the task's name as its
first word (``own`` unless ``--task`` names it). The label set of a classification task is the
training file's labels, sorted (numerically when they are all whole numbers); a validation or test
label outside it is refused. Without a task type, labels that are all numbers with a fraction
somewhere mean regression, anything else classification.

Splits are used as given. Without a test file the validation file is the test set and a
validation set of :func:`validation_size` rows is drawn from the training file with the split
seed. Every problem is a :class:`~runners.tasks.data.DataError` naming the file, the column or
label, and what was found — raised before any model is loaded.

>>> import tempfile
>>> from pathlib import Path
>>> folder = Path(tempfile.mkdtemp())
>>> rows = "text,label,id\\n" + "".join(f"review {i},{'good' if i % 2 else 'bad'},{i}\\n" for i in range(8))
>>> _ = (folder / "train.csv").write_text(rows); _ = (folder / "dev.csv").write_text(rows)
>>> task, splits, note = load_own_data(folder / "train.csv", folder / "dev.csv", text_columns=["text"],
...                                    label_column="label")
>>> task.name, task.task_type, task.labels, task.to_text(splits["test"][1])
('own', 'classification', ('bad', 'good'), ('own text: review 1', 'good'))
>>> [len(splits[name]) for name in ("train", "validation", "test")], note   # doctest: +ELLIPSIS
([7, 1, 8], 'no --test-file: the validation file ... is the test set; 1 training row ... is the validation set')
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import metrics
from .data import DataError, read_rows
from .formats import Row, prefixed_columns_source
from .registry import TASK_TYPE_OF_TARGET, Task

__all__ = ["OwnDataTask", "TASK_TYPES", "DEFAULT_NAME", "load_own_data", "label_word", "validation_size",
           "own_task"]

TASK_TYPES = tuple(TASK_TYPE_OF_TARGET.values())  # classification, regression, generation
DEFAULT_NAME = "own"
METRICS = {"classification": ("accuracy", "macro_f1"), "regression": ("pearson", "spearman"),
           "generation": ("exact_match",)}


def label_word(value: object) -> str:
    """A label as the word the model writes: whole numbers without ``.0``, text stripped.

    >>> [label_word(v) for v in (1, 2.0, " pos ", True, 0.5)]
    ['1', '2', 'pos', 'True', '0.5']
    """
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _own_target(task: OwnDataTask, row: Row) -> str:
    value = row[task.label_column]
    if task.task_type == "regression":
        number = metrics.finite_number(value)
        if number is None:
            raise ValueError(f"label {value!r} in column {task.label_column!r} is not a number (task type regression)")
        return f"{number:g}"
    word = label_word(value)
    if task.labels is not None and word not in task.labels:
        raise ValueError(f"label {word!r} in column {task.label_column!r} is not among the training file's labels "
                         f"({', '.join(task.labels)})")
    return word


def _own_scores(task: OwnDataTask, predictions: list[str], rows: Sequence[Row]) -> dict[str, float]:
    if task.task_type == "regression":
        gold = [float(row[task.label_column]) for row in rows]  # type: ignore[arg-type]
        low, high = task.value_range or (min(gold), max(gold))
        values = metrics.parse_scores(predictions, gold, low, high)
        return {"pearson": metrics.pearson(values, gold), "spearman": metrics.spearman(values, gold)}
    references = [_own_target(task, row) for row in rows]
    if task.task_type == "generation":
        return {"exact_match": metrics.accuracy(predictions, references)}
    assert task.labels is not None
    return {"accuracy": metrics.accuracy(predictions, references),
            "macro_f1": metrics.macro_f1(predictions, references, labels=task.labels)}


@dataclass(frozen=True)
class OwnDataTask(Task):
    """A :class:`Task` whose text columns, label column, type and label set come from one's own files
    (its type, :attr:`Task.task_type`, follows from the label set and metrics :func:`own_task` gives it)."""

    label_column: str = "label"
    value_range: tuple[float, float] | None = None  # regression: the training labels' range (scores an unparsable prediction)

    @property
    def text_columns(self) -> tuple[str, ...]:
        return self.source_columns


def own_task(name: str, text_columns: Sequence[str], label_column: str, task_type: str,
             labels: Sequence[str] | None = None, value_range: tuple[float, float] | None = None) -> OwnDataTask:
    """The task of the given columns, type and (classification) label set.

    >>> own_task("reviews", ["title", "body"], "stars", "regression").to_text({"title": "A", "body": "B", "stars": 4})
    ('reviews title: A body: B', '4')
    """
    if task_type not in METRICS:
        raise ValueError(f"task type {task_type!r}: choose one of {', '.join(METRICS)}")
    if task_type == "classification" and not labels:
        raise ValueError(f"task {name!r}: a classification task needs its label set")
    return OwnDataTask(
        name=name, benchmark="own", hub=None, columns=(*text_columns, label_column),
        labels=tuple(labels) if task_type == "classification" and labels is not None else None,
        metric_names=METRICS[task_type], size="presplit", test_split="test", source_columns=tuple(text_columns),
        format_source=prefixed_columns_source, format_target=_own_target, scorer=_own_scores,
        label_column=label_column, value_range=value_range,
    )


def validation_size(train_rows: int) -> int:
    """Rows drawn from the training file as validation when no test file is given: a tenth, 1 to 1,000.

    >>> validation_size(8), validation_size(500), validation_size(50_000)
    (1, 50, 1000)
    """
    return max(1, min(1000, train_rows // 10))


def _read(path: Path, flag: str, needed: Sequence[str]) -> list[tuple[str, dict]]:
    located = read_rows(path)
    if not located:
        raise DataError(f"{flag} {path}: the file holds no rows")
    found = list(located[0][1])
    for where, row in located:
        missing = [column for column in needed if column not in row]
        if missing:
            option = "--label-column" if missing[0] == needed[-1] else "--text-column"
            raise DataError(f"{option} {missing[0]!r}: no such column in {path} ({where}); "
                            f"columns found: {', '.join(map(str, found)) or '(none)'}")
    return located


def _sorted_labels(words: set[str]) -> tuple[str, ...]:
    if all(word.lstrip("+-").isdigit() for word in words):
        return tuple(sorted(words, key=int))
    return tuple(sorted(words))


def _infer_type(labels: list[object]) -> str:
    numbers = [metrics.finite_number(value) for value in labels]
    if all(number is not None for number in numbers) and any(not n.is_integer() for n in numbers):  # type: ignore[union-attr]
        return "regression"
    return "classification"


def _typed_task(name: str, text_columns: Sequence[str], label_column: str, task_type: str | None,
                train_path: Path, train: list[tuple[str, dict]]) -> OwnDataTask:
    values = [row[label_column] for _, row in train]
    for where, row in train:
        if row[label_column] is None or (isinstance(row[label_column], str) and not row[label_column].strip()):
            raise DataError(f"{train_path}, {where}: empty label in column {label_column!r}")
    task_type = task_type or _infer_type(values)
    if task_type == "regression":
        numbers = []
        for where, row in train:
            number = metrics.finite_number(row[label_column])
            if number is None:
                raise DataError(f"{train_path}, {where}: label {row[label_column]!r} in column {label_column!r} is not "
                                "a number; regression needs numeric labels (give --task-type classification for classes)")
            numbers.append(number)
        return own_task(name, text_columns, label_column, task_type, value_range=(min(numbers), max(numbers)))
    if task_type == "classification":
        labels = _sorted_labels({label_word(value) for value in values})
        if len(labels) < 2:
            raise DataError(f"{train_path}: every training row has the label {labels[0]!r} in column {label_column!r}; "
                            "classification needs at least two classes")
        return own_task(name, text_columns, label_column, task_type, labels)
    return own_task(name, text_columns, label_column, task_type)


def _checked_rows(task: OwnDataTask, path: Path, located: list[tuple[str, dict]]) -> list[dict]:
    rows = []
    for where, row in located:
        try:
            task.to_text(row)
        except (ValueError, TypeError) as error:
            raise DataError(f"{path}, {where}: {error}") from None
        rows.append(row)
    return rows


def load_own_data(train_file: str | Path, validation_file: str | Path, test_file: str | Path | None = None, *,
                  text_columns: Sequence[str], label_column: str, task_type: str | None = None,
                  name: str = DEFAULT_NAME, seed: int = 42) -> tuple[OwnDataTask, dict[str, list[dict]], str | None]:
    """``(task, {"train", "validation", "test"} rows, a note or None)`` from one's own files.

    The note says where the validation set came from when no test file was given.
    """
    if task_type is not None and task_type not in TASK_TYPES:
        raise DataError(f"--task-type {task_type!r}: choose one of {', '.join(TASK_TYPES)}")
    if not 1 <= len(text_columns) <= 2:
        raise DataError(f"--text-column {','.join(text_columns)!r}: give one or two text columns")
    if label_column in text_columns:
        raise DataError(f"--label-column {label_column!r} is also a --text-column")
    needed = (*text_columns, label_column)
    paths = {"--train-file": Path(train_file), "--validation-file": Path(validation_file)}
    if test_file is not None:
        paths["--test-file"] = Path(test_file)
    located = {flag: _read(path, flag, needed) for flag, path in paths.items()}  # every file checked before any split
    task = _typed_task(name, text_columns, label_column, task_type, paths["--train-file"], located["--train-file"])
    rows = {flag: _checked_rows(task, paths[flag], located[flag]) for flag in located}
    if test_file is not None:
        return task, {"train": rows["--train-file"], "validation": rows["--validation-file"],
                      "test": rows["--test-file"]}, None
    train = rows["--train-file"]
    if len(train) < 2:
        raise DataError(f"{paths['--train-file']}: 1 training row; without --test-file a validation set is drawn "
                        "from the training file, which needs at least 2 rows")
    count = validation_size(len(train))
    held_out = set(random.Random(f"own-validation-{seed}").sample(range(len(train)), count))
    note = (f"no --test-file: the validation file ({len(rows['--validation-file']):,} rows) is the test set; "
            f"{count:,} training row{'s' * (count != 1)} drawn with split seed {seed} {'are' if count != 1 else 'is'} "
            "the validation set")
    return task, {"train": [row for i, row in enumerate(train) if i not in held_out],
                  "validation": [row for i, row in enumerate(train) if i in held_out],
                  "test": rows["--validation-file"]}, note


def own_data_options(options: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :func:`load_own_data` from `runners.finetune`'s options."""
    return {"train_file": options["train_file"], "validation_file": options.get("validation_file"),
            "test_file": options.get("test_file"),
            "text_columns": [c.strip() for c in str(options.get("text_column") or "").split(",")],
            "label_column": options.get("label_column"), "task_type": options.get("task_type"),
            "name": options.get("task") or DEFAULT_NAME, "seed": options.get("split_seed") or 42}
