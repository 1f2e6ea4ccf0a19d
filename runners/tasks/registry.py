"""The task registry: every GLUE / SuperGLUE task of the Compacter paper as T5 text-to-text.

A :class:`Task` is data (where the data lives, which columns it has, its labels, metrics and
split rule) plus three small functions: how a row becomes a source string, how it becomes a
target string, and how decoded predictions are scored. Formats follow T5's conventions
(Raffel et al., 2020): ``"<task> <column>: <value> <column>: <value> ..."`` with the columns in
the order T5 uses, and the label's *name* as the target.

==========  =====================================================  ==================================
task        source                                                 target
==========  =====================================================  ==================================
cola        ``cola sentence: …``                                   unacceptable / acceptable
sst2        ``sst2 sentence: …``                                   negative / positive
mrpc        ``mrpc sentence1: … sentence2: …``                     not_equivalent / equivalent
qqp         ``qqp question1: … question2: …``                      not_duplicate / duplicate
stsb        ``stsb sentence1: … sentence2: …``                     round(label·5)/5 as ``"3.4"``
mnli        ``mnli hypothesis: … premise: …``                      entailment / neutral / contradiction
qnli        ``qnli question: … sentence: …``                       entailment / not_entailment
rte         ``rte sentence1: … sentence2: …``                      entailment / not_entailment
boolq       ``boolq passage: … question: …``                       False / True
cb          ``cb hypothesis: … premise: …``                        entailment / contradiction / neutral
copa        ``copa choice1: … choice2: … premise: … question: …``  choice1 / choice2
multirc     ``multirc question: … answer: … paragraph: …``         False / True (one row per answer)
record      ``record query: … entities: e1, e2 passage: …``        an answer's text
wic         ``wic sentence1: … sentence2: … word: …``              False / True
embedded    ``embedded sentence: …``                               negative / positive
==========  =====================================================  ==================================

Rows use the Hugging Face column names. A label may be given as its index (``0``, ``"1"``,
``True``) or as its name (``"entailment"``); the label order is the Hub's. Special cases:

* **multirc**: rows carry ``idx = {"paragraph": p, "question": q, "answer": a}``; scoring groups
  the answer rows of one question by ``(p, q)``. ``<br>`` becomes a space and ``<b>``/``</b>``
  are dropped from the source, as T5 does.
* **record**: one row per (passage, query) with ``entities`` and ``answers`` lists. In the
  passage, ``"\\n@highlight\\n"`` becomes ``". "`` (or just a space after sentence-final
  punctuation); entities are joined by ``", "`` (duplicates dropped, order kept). The target is
  the first answer; :meth:`Task.to_training_texts` yields one pair per answer (T5 trains on
  every answer); scoring takes the best over all answers.
* **stsb**: the target is ``round(label * 5) / 5`` (Python's half-to-even rounding, like
  ``tf.round``) with one decimal: the 0.2 grid "0.0", "0.2", ..., "5.0" (26 strings over STS-B's
  0..5 range; never the 0.1 grid of the authors' code). Scoring parses predictions as floats
  (see :func:`runners.tasks.metrics.parse_scores`) and correlates them with the raw gold scores.

Scores are on the paper's 0..100 scale; see :mod:`runners.tasks.metrics` for how a prediction that is
not a valid label is counted (always as wrong).

>>> task = get_task("rte")
>>> task.to_text({"sentence1": "A cat sat.", "sentence2": "An animal sat.", "label": 0})
('rte sentence1: A cat sat. sentence2: An animal sat.', 'entailment')
>>> task.score(["entailment", "maybe"], [{"label": 0}, {"label": 1}])
{'accuracy': 50.0}
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from . import metrics

__all__ = ["Task", "TASKS", "get_task"]

Row = Mapping[str, object]


# --- source formats -------------------------------------------------------------------------


def _column(task: Task, row: Row, column: str) -> object:
    try:
        return row[column]
    except KeyError:
        raise ValueError(
            f"task {task.name!r}: row has no column {column!r}; columns found: {', '.join(map(str, row))}"
        ) from None


def prefixed_columns_source(task: Task, row: Row) -> str:
    """T5's GLUE format: ``"<task> col1: value1 col2: value2"``."""
    parts = [task.name] + [f"{column}: {_column(task, row, column)}" for column in task.source_columns]
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


def _record_answers(row: Row) -> list[str]:
    answers = row.get("answers", [])
    if isinstance(answers, str):
        raise ValueError(f"task 'record': answers must be a list of strings, got the string {answers!r}")
    return [str(answer) for answer in answers]  # type: ignore[union-attr]


def record_target(task: Task, row: Row) -> str:
    """The first gold answer (``""`` for an unanswered row)."""
    answers = _record_answers(row)
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
    return metrics.record_scores(predictions, [_record_answers(row) for row in rows])


@dataclass(frozen=True)
class Task:
    """One task: where its data lives, its columns and labels, its text format and metrics.

    Attributes:
        name: registry key and T5 prefix, e.g. ``"rte"``.
        benchmark: ``"glue"``, ``"superglue"`` or ``"embedded"``.
        hub: ``(path, config)`` for ``datasets.load_dataset``; ``None`` when not on the Hub.
        columns: original column names a local data file must have.
        labels: valid target strings of a classification task, index = Hub label id;
            ``None`` for free-text or numeric targets (record, stsb).
        metric_names: keys of :meth:`score`'s result, in the paper's order.
        size: split rule: ``"small"`` (halve the original validation set into
            validation/test), ``"large"`` (1,000 training rows become validation, the original
            validation set is test) or ``"presplit"`` (files already hold train/validation/test).
        test_split: the original split that provides the test rows.
        source_columns: columns written into the source, in T5's order.
        structured_columns: columns holding lists/dicts (JSON-encoded in CSV/TSV files).
    """

    name: str
    benchmark: str
    hub: tuple[str, str] | None
    columns: tuple[str, ...]
    labels: tuple[str, ...] | None
    metric_names: tuple[str, ...]
    size: str
    test_split: str
    source_columns: tuple[str, ...] = ()
    structured_columns: tuple[str, ...] = ()
    # How a row becomes text and how predictions are scored; the defaults fit GLUE-style
    # classification, special tasks (stsb, multirc, record) plug in their own.
    format_source: Callable[[Task, Row], str] = field(default=prefixed_columns_source, repr=False, compare=False)
    format_target: Callable[[Task, Row], str] = field(default=label_name_target, repr=False, compare=False)
    scorer: Callable[[Task, list[str], Sequence[Row]], dict[str, float]] = field(
        default=classification_scores, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.size not in ("small", "large", "presplit"):
            raise ValueError(f"task {self.name!r}: size must be 'small', 'large' or 'presplit', not {self.size!r}")

    @property
    def original_splits(self) -> tuple[str, ...]:
        """Splits the raw data must provide, e.g. ``("train", "validation_matched")`` for mnli."""
        if self.size == "presplit":
            return ("train", "validation", "test")
        return ("train", self.test_split)

    def label_text(self, value: object) -> str:
        """The label's name for an index (``1``, ``"1"``, ``True``) or a name.

        >>> get_task("sst2").label_text(1), get_task("sst2").label_text("negative")
        ('positive', 'negative')
        """
        if self.labels is None:
            raise ValueError(f"task {self.name!r} has no label names")
        if isinstance(value, str):
            text = value.strip()
            if text in self.labels:
                return text
            if re.fullmatch(r"[+-]?\d+", text):
                value = int(text)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and 0 <= value < len(self.labels):  # bool is an int: True -> 1
            return self.labels[int(value)]
        raise ValueError(
            f"task {self.name!r}: label {value!r} is neither a label name nor an index; "
            f"valid: {', '.join(self.labels)} or 0..{len(self.labels) - 1}"
        )

    def to_text(self, row: Row) -> tuple[str, str]:
        """``(source, target)`` strings of one row, in T5's text-to-text format."""
        return self.format_source(self, row), self.format_target(self, row)

    def to_training_texts(self, row: Row) -> list[tuple[str, str]]:
        """All ``(source, target)`` training pairs of a row: one per answer for record, else one.

        >>> get_task("cola").to_training_texts({"sentence": "Hi.", "label": 1})
        [('cola sentence: Hi.', 'acceptable')]
        """
        if self.format_target is record_target:  # T5 trains ReCoRD on every gold answer
            source = self.format_source(self, row)
            return [(source, str(answer)) for answer in _record_answers(row)] or [(source, "")]
        return [self.to_text(row)]

    def score(self, predictions: list[str], rows: Sequence[Row]) -> dict[str, float]:
        """The paper's metrics (0..100) of decoded ``predictions`` against ``rows``' gold labels.

        Predictions are stripped of surrounding whitespace; anything else that is not a valid
        label counts as wrong (rules in :mod:`runners.tasks.metrics`).
        """
        if len(predictions) != len(rows):
            raise ValueError(f"task {self.name!r}: {len(predictions)} predictions for {len(rows)} rows")
        return self.scorer(self, [str(p).strip() for p in predictions], rows)

    def summary_score(self, scores: Mapping[str, float]) -> float:
        """One number per task: the mean of its metrics (for picking the best checkpoint).

        >>> get_task("mrpc").summary_score({"f1": 90.0, "accuracy": 86.0})
        88.0
        """
        return sum(scores[name] for name in self.metric_names) / len(self.metric_names)


# --- the registry ---------------------------------------------------------------------------

HUB_PATHS = {"glue": "nyu-mll/glue", "superglue": "aps/super_glue"}
FALSE_TRUE = ("False", "True")


def _hub_task(
    benchmark: str,
    name: str,
    source_columns: tuple[str, ...],
    labels: tuple[str, ...] | None,
    metric_names: tuple[str, ...] = ("accuracy",),
    size: str = "small",
    **overrides,
) -> Task:
    """A Hub task whose columns default to its source columns plus ``label``."""
    settings = dict(columns=source_columns + ("label",), test_split="validation") | overrides
    return Task(
        name=name,
        benchmark=benchmark,
        hub=(HUB_PATHS[benchmark], name),
        labels=labels,
        metric_names=metric_names,
        size=size,
        source_columns=source_columns,
        **settings,
    )


def _glue(name: str, *args, **kwargs) -> Task:
    return _hub_task("glue", name, *args, **kwargs)


def _superglue(name: str, *args, **kwargs) -> Task:
    return _hub_task("superglue", name, *args, **kwargs)


_ALL_TASKS = (
    _glue("cola", ("sentence",), ("unacceptable", "acceptable"), ("matthews_corrcoef",)),
    _glue("sst2", ("sentence",), ("negative", "positive"), size="large"),
    _glue("mrpc", ("sentence1", "sentence2"), ("not_equivalent", "equivalent"), ("f1", "accuracy")),
    _glue("qqp", ("question1", "question2"), ("not_duplicate", "duplicate"), ("f1", "accuracy"), size="large"),
    _glue(
        "stsb",
        ("sentence1", "sentence2"),
        None,
        ("pearson", "spearman"),
        format_target=stsb_target,
        scorer=stsb_scores,
    ),
    _glue(
        "mnli",
        ("hypothesis", "premise"),
        ("entailment", "neutral", "contradiction"),
        size="large",
        test_split="validation_matched",
    ),
    _glue("qnli", ("question", "sentence"), ("entailment", "not_entailment"), size="large"),
    _glue("rte", ("sentence1", "sentence2"), ("entailment", "not_entailment")),
    _superglue("boolq", ("passage", "question"), FALSE_TRUE),
    _superglue("cb", ("hypothesis", "premise"), ("entailment", "contradiction", "neutral"), ("macro_f1", "accuracy")),
    _superglue("copa", ("choice1", "choice2", "premise", "question"), ("choice1", "choice2")),
    _superglue(
        "multirc",
        ("question", "answer", "paragraph"),
        FALSE_TRUE,
        ("f1a", "em"),
        columns=("paragraph", "question", "answer", "idx", "label"),
        structured_columns=("idx",),
        format_source=multirc_source,
        scorer=multirc_scores,
    ),
    _superglue(
        "record",
        ("query", "entities", "passage"),
        None,
        ("f1", "em"),
        size="large",
        columns=("passage", "query", "entities", "answers"),
        structured_columns=("entities", "answers"),
        format_source=record_source,
        format_target=record_target,
        scorer=record_scores,
    ),
    _superglue("wic", ("sentence1", "sentence2", "word"), FALSE_TRUE),
    Task(
        name="embedded",
        benchmark="embedded",
        hub=None,
        columns=("sentence", "label"),
        labels=("negative", "positive"),
        metric_names=("accuracy",),
        size="presplit",
        test_split="test",
        source_columns=("sentence",),
    ),
)

TASKS: dict[str, Task] = {task.name: task for task in _ALL_TASKS}


def get_task(name: str) -> Task:
    """The registered task called ``name`` (case, ``-`` and ``_`` ignored: ``"SST-2"`` works).

    >>> get_task("STS-B").name
    'stsb'
    >>> get_task("rtee")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown task 'rtee' (did you mean 'rte'?); valid tasks: boolq, cb, cola, copa, ..., wic
    """
    key = re.sub(r"[-_\s]", "", str(name).lower())
    if key in TASKS:
        return TASKS[key]
    message = f"unknown task {name!r}"
    suggestion = difflib.get_close_matches(key, TASKS, n=1, cutoff=0.5)
    if suggestion:
        message += f" (did you mean {suggestion[0]!r}?)"
    raise ValueError(message + "; valid tasks: " + ", ".join(sorted(TASKS)))
