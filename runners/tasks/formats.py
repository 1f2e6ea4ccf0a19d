"""How a task's rows become T5 text and how its predictions are scored (used by `registry.Task`).

Sources follow T5's GLUE format ``"<prefix> <column>: <value> ..."``; targets are label names
(or the STS-B score on the 0.2 grid, a ReCoRD answer); scorers compute the paper's metrics with
:mod:`runners.tasks.metrics`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from . import metrics

Row = Mapping[str, object]
Task = Any  # a registry.Task (not imported: the registry imports this module)


# --- source formats -------------------------------------------------------------------------


def _column(task: Task, row: Row, column: str) -> object:
    try:
        return row[column]
    except KeyError:
        raise ValueError(
            f"task {task.name!r}: row has no column {column!r}; columns found: {', '.join(map(str, row))}"
        ) from None


def prefixed_columns_source(task: Task, row: Row) -> str:
    """T5's GLUE format: ``"<prefix> col1: value1 col2: value2"`` (the prefix is the task's name by default)."""
    parts = [task.prefix or task.name] + [f"{column}: {_column(task, row, column)}" for column in task.source_columns]
    return " ".join(parts)


def multirc_source(task: Task, row: Row) -> str:
    """The GLUE format with MultiRC's HTML markup removed (as T5 does)."""
    text = prefixed_columns_source(task, row).replace("<br>", " ")
    return re.sub(r"</?b>", "", text)


def record_source(task: Task, row: Row) -> str:
    """``"record query: <query> entities: <e1>, <e2> passage: <passage>"`` (T5's ReCoRD format)."""
    passage = str(_column(task, row, "passage"))
    passage = re.sub(r"([.?!\"'])\n@highlight\n", r"\1 ", passage)
    passage = passage.replace("\n@highlight\n", ". ")
    entities = _column(task, row, "entities")
    if isinstance(entities, str):
        raise ValueError(f"task 'record': entities must be a list of strings, got the string {entities!r}")
    unique_entities = list(dict.fromkeys(str(entity) for entity in entities))  # type: ignore[union-attr]
    query = _column(task, row, "query")
    return f"record query: {query} entities: {', '.join(unique_entities)} passage: {passage}"


# --- target formats -------------------------------------------------------------------------


def label_name_target(task: Task, row: Row) -> str:
    """The label's name, e.g. ``"entailment"``."""
    return task.label_text(_column(task, row, "label"))


def stsb_target(task: Task, row: Row) -> str:
    """The similarity score rounded to the 0.2 grid, one decimal (half to even, as ``tf.round``).

    >>> from runners.tasks import get_task
    >>> stsb = get_task("stsb")
    >>> [stsb_target(stsb, {"label": x}) for x in (3.45, 3.5, 3.52, 0.0, 5.0)]
    ['3.4', '3.6', '3.6', '0.0', '5.0']
    """
    value = _column(task, row, "label")
    try:
        score = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"task 'stsb': label {value!r} is not a number") from None
    return f"{round(score * 5) / 5:.1f}"


def record_answers(row: Row) -> list[str]:
    answers = row.get("answers", [])
    if isinstance(answers, str):
        raise ValueError(f"task 'record': answers must be a list of strings, got the string {answers!r}")
    return [str(answer) for answer in answers]  # type: ignore[union-attr]


def record_target(task: Task, row: Row) -> str:
    """The first gold answer (``""`` for an unanswered row)."""
    answers = record_answers(row)
    return answers[0] if answers else ""


# --- scorers --------------------------------------------------------------------------------


def classification_scores(task: Task, predictions: list[str], rows: Sequence[Row]) -> dict[str, float]:
    """The metrics in ``task.metric_names`` for a classification task."""
    assert task.labels is not None
    references = [task.format_target(task, row) for row in rows]
    compute = {
        "accuracy": lambda: metrics.accuracy(predictions, references),
        # The positive class of MRPC/QQP is the label with id 1 ("equivalent", "duplicate").
        "f1": lambda: metrics.f1_binary(predictions, references, positive=task.labels[1]),
        "macro_f1": lambda: metrics.macro_f1(predictions, references, labels=task.labels),
        "matthews_corrcoef": lambda: metrics.matthews_corrcoef(predictions, references, labels=task.labels),
    }
    return {name: compute[name]() for name in task.metric_names}


def stsb_scores(task: Task, predictions: list[str], rows: Sequence[Row]) -> dict[str, float]:
    """Pearson and Spearman between parsed predictions and the raw gold similarity scores."""
    gold = [float(_column(task, row, "label")) for row in rows]  # type: ignore[arg-type]
    values = metrics.parse_scores(predictions, gold)
    return {"pearson": metrics.pearson(values, gold), "spearman": metrics.spearman(values, gold)}


def _multirc_question(task: Task, row: Row) -> tuple[object, object]:
    idx = _column(task, row, "idx")
    if not isinstance(idx, Mapping) or "paragraph" not in idx or "question" not in idx:
        raise ValueError(f"task 'multirc': idx must be a mapping with 'paragraph' and 'question', got {idx!r}")
    return idx["paragraph"], idx["question"]


def multirc_scores(task: Task, predictions: list[str], rows: Sequence[Row]) -> dict[str, float]:
    """F1 over all answer options and per-question exact match."""
    references = [task.format_target(task, row) for row in rows]
    questions = [_multirc_question(task, row) for row in rows]
    return metrics.multirc_scores(predictions, references, questions, positive="True")


def record_scores(task: Task, predictions: list[str], rows: Sequence[Row]) -> dict[str, float]:
    """Token F1 and exact match, each the best over the row's gold answers."""
    return metrics.record_scores(predictions, [record_answers(row) for row in rows])
