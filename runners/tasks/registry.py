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
==========  =====================================================  ==================================

The five ``embedded-*`` tasks (``embedded-sst2``, ``-cola``, ``-mrpc``, ``-mnli``, ``-stsb``; the
group ``embedded-glue``) are the embedded benchmark shipped in ``runners/embedded/glue/``, in
the shape of the GLUE task each is named after and written in its format (``"sst2 sentence: …"``);
their labels are words the embedded corpus uses (see runners/embedded/README.md). The five
``world2-*`` tasks (group ``world2-glue``) are world 2's (``runners/embedded/world2/``): their
test words are held out of their training splits and known only from world 2's corpus, so they
are written for world 2's own pretrained T5 (``Task.model_dir``), which a run trains when
``--model`` is left out. Their targets put a rationale before the label (``Task.rationale_column``):
what the corpus says of the words that decide it, ``awful ; negative``; only the label is scored.

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
from pathlib import Path

from runners.embedded import BENCHMARK_DIR
from runners.embedded.language.benchmark import LABELS as EMBEDDED_LABELS
from runners.embedded.language.benchmark import TASK_FIELDS as EMBEDDED_FIELDS
from runners.embedded.world2 import BENCHMARK_DIR as WORLD2_BENCHMARK_DIR
from runners.embedded.world2 import MODEL_DIR as WORLD2_MODEL_DIR
from runners.embedded.world2.benchmark import LABELS as WORLD2_LABELS
from runners.embedded.world2.benchmark import RATIONALE as WORLD2_RATIONALE
from runners.embedded.world2.benchmark import TASK_FIELDS as WORLD2_FIELDS

from .metrics import finite_number
from .formats import (Row, classification_scores, label_name_target, multirc_scores, multirc_source,
                      prefixed_columns_source, record_scores, record_source, record_target, record_answers, stsb_scores,
                      stsb_target)

__all__ = ["RATIONALE_SEPARATOR", "TASK_TYPE_OF_TARGET", "Task", "TASKS", "TASK_GROUPS", "expand_task_names", "get_task"]

TASK_TYPE_OF_TARGET = {"label": "classification", "number": "regression", "text": "generation"}
RATIONALE_SEPARATOR = " ; "  # between a rationale and the label (Task.rationale_column), as world 2's explain: answers


@dataclass(frozen=True)
class Task:
    """One task: where its data lives, its columns and labels, its text format and metrics.

    Attributes:
        name: registry key and T5 prefix, e.g. ``"rte"``.
        benchmark: ``"glue"``, ``"superglue"`` or ``"embedded"`` (both embedded worlds: their protocol).
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
        prefix: the source's first word when it is not ``name`` (the embedded tasks use the
            GLUE task they are shaped like: ``embedded-sst2`` writes ``"sst2 sentence: …"``).
        local_dir: where a presplit task's files ship (the embedded benchmark).
        model_dir: the shipped pretrained model whose corpus the task's words come from, trained
            when ``--model`` is left out (world 2's tasks); ``None``: the runner's default, world
            1's embedded T5 (``runners/embedded/model``).
        rate_column: the column of ``runners.finetune.protocol.LEARNING_RATES`` whose learning rates
            an embedded task's runs take (the world's name: ``"embedded"``, ``"world2"``); ``None``
            for the paper's tasks.
        rationale_column: a column the model writes before the label, ``"<rationale> ; <label>"``
            (world 2's tasks: what the corpus says of the words that decide the label); scoring
            reads the answer after the last ``" ; "`` (:meth:`answer`). ``None``: the label alone.
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
    prefix: str | None = None  # the source's first word, when it is not the task's name
    local_dir: Path | None = field(default=None, compare=False)  # shipped split files (presplit tasks)
    model_dir: Path | None = field(default=None, compare=False)  # the shipped model the task is written for
    rationale_column: str | None = None  # written before the label: "<rationale> ; <label>"
    rate_column: str | None = None  # the protocol's learning-rate column of an embedded world's tasks
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
        """``(source, target)`` strings of one row, in T5's text-to-text format.

        >>> get_task("world2-sst2").to_text({"sentence": "it was flosten .", "label": 1, "rationale": "good"})
        ('sst2 sentence: it was flosten .', 'good ; positive')
        """
        target = self.format_target(self, row)
        if self.rationale_column is not None:
            target = f"{row[self.rationale_column]}{RATIONALE_SEPARATOR}{target}"
        return self.format_source(self, row), target

    def split_prediction(self, prediction: str) -> tuple[str | None, str]:
        """``(rationale, answer)`` of a decoded prediction, stripped: when the task writes a rationale
        first, the text before and after the last ``;`` (no ``;``: an empty rationale and all of it as
        the answer); else ``None`` and the whole prediction.

        >>> get_task("world2-sst2").split_prediction("good ; positive"), get_task("sst2").split_prediction(" positive ")
        (('good', 'positive'), (None, 'positive'))
        """
        text = str(prediction)
        if self.rationale_column is None:
            return None, text.strip()
        rationale, _, answer = text.rpartition(RATIONALE_SEPARATOR.strip())
        return rationale.strip(), answer.strip()

    def answer(self, prediction: str) -> str:
        """What a decoded prediction answers, the part that is scored (:meth:`split_prediction`).

        >>> get_task("world2-mnli").answer("builder from giten ; no")
        'no'
        """
        return self.split_prediction(prediction)[1]

    @property
    def target_kind(self) -> str:
        """``"label"`` (one of :attr:`labels`), ``"number"`` (scored by correlation) or ``"text"`` (anything else).

        >>> [get_task(name).target_kind for name in ("rte", "stsb", "record")]
        ['label', 'number', 'text']
        """
        if self.labels is not None:
            return "label"
        return "number" if set(self.metric_names) == {"pearson", "spearman"} else "text"

    @property
    def task_type(self) -> str:
        """:attr:`target_kind` as one's own data and ``task.json`` name it: classification, regression or generation.

        >>> [get_task(name).task_type for name in ("rte", "stsb", "record")]
        ['classification', 'regression', 'generation']
        """
        return TASK_TYPE_OF_TARGET[self.target_kind]

    def is_valid_answer(self, prediction: str) -> bool:
        """Whether a decoded prediction's :meth:`answer` is one of the task's labels (a finite number
        for a correlation task); any text answers a free-text task. Scoring counts the others as wrong
        (:mod:`runners.tasks.metrics`); :meth:`invalid_percent` says how many there were.

        >>> sst2, stsb = get_task("sst2"), get_task("world2-stsb")
        >>> sst2.is_valid_answer(" positive"), sst2.is_valid_answer("posit"), sst2.is_valid_answer("1")
        (True, False, False)
        >>> stsb.is_valid_answer("wash ; 3.6"), stsb.is_valid_answer("wash ; "), stsb.is_valid_answer("nan")
        (True, False, False)
        """
        answer = self.answer(prediction)
        if self.target_kind == "label":
            return answer in self.labels
        if self.target_kind == "number":
            return finite_number(answer) is not None
        return True

    def invalid_percent(self, predictions: Sequence[str]) -> float:
        """The share of `predictions` (0..100) that are no valid answer (:meth:`is_valid_answer`): a
        score that is low because the model rarely writes a label, not because it chooses wrong ones.

        >>> get_task("sst2").invalid_percent(["positive", "negative", "neutral", "positive"])
        25.0
        """
        if not predictions:
            raise ValueError(f"task {self.name!r}: no predictions to check")
        return 100 * sum(not self.is_valid_answer(p) for p in predictions) / len(predictions)

    def to_training_texts(self, row: Row) -> list[tuple[str, str]]:
        """All ``(source, target)`` training pairs of a row: one per answer for record, else one.

        >>> get_task("cola").to_training_texts({"sentence": "Hi.", "label": 1})
        [('cola sentence: Hi.', 'acceptable')]
        """
        if self.format_target is record_target:  # T5 trains ReCoRD on every gold answer
            source = self.format_source(self, row)
            return [(source, str(answer)) for answer in record_answers(row)] or [(source, "")]
        return [self.to_text(row)]

    def score(self, predictions: list[str], rows: Sequence[Row]) -> dict[str, float]:
        """The paper's metrics (0..100) of decoded ``predictions`` against ``rows``' gold labels.

        Each prediction's :meth:`answer` is scored (stripped of surrounding whitespace, after a
        rationale if the task writes one); anything else that is not a valid label counts as wrong
        (rules in :mod:`runners.tasks.metrics`).
        """
        if len(predictions) != len(rows):
            raise ValueError(f"task {self.name!r}: {len(predictions)} predictions for {len(rows)} rows")
        return self.scorer(self, [self.answer(p) for p in predictions], rows)

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


# The embedded worlds' five tasks, each in the shape of the GLUE task it is named after.
EMBEDDED_METRICS = {"sst2": ("accuracy",), "cola": ("matthews_corrcoef",), "mrpc": ("f1", "accuracy"),
                    "mnli": ("accuracy",), "stsb": ("pearson", "spearman")}


def _embedded_task(world: str, short: str, fields: Mapping, labels: Mapping, benchmark_dir: Path,
                   model_dir: Path | None, rationale_column: str | None = None) -> Task:
    """``<world>-<short>``: a task of an embedded world's benchmark (files in `benchmark_dir`), in the
    embedded protocol (benchmark ``"embedded"``), written for the shipped model in `model_dir`."""
    prefix, columns = fields[short]
    return Task(name=f"{world}-{short}", benchmark="embedded", hub=None,
                columns=columns + ("label",) + ((rationale_column,) if rationale_column else ()),
                labels=labels[short], metric_names=EMBEDDED_METRICS[short], size="presplit", test_split="test",
                source_columns=columns, prefix=prefix, local_dir=benchmark_dir / short, model_dir=model_dir,
                rationale_column=rationale_column, rate_column=world,
                **({"format_target": stsb_target, "scorer": stsb_scores} if short == "stsb" else {}))


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
    *(_embedded_task("embedded", short, EMBEDDED_FIELDS, EMBEDDED_LABELS, BENCHMARK_DIR, None)
      for short in EMBEDDED_METRICS),
    *(_embedded_task("world2", short, WORLD2_FIELDS, WORLD2_LABELS, WORLD2_BENCHMARK_DIR, WORLD2_MODEL_DIR,
                     rationale_column=WORLD2_RATIONALE) for short in EMBEDDED_METRICS),
)

TASKS: dict[str, Task] = {task.name: task for task in _ALL_TASKS}
# Names that stand for several tasks on the command line.
TASK_GROUPS: dict[str, tuple[str, ...]] = {
    f"{world}-glue": tuple(name for name in TASKS if name.startswith(f"{world}-")) for world in ("embedded", "world2")
}


def _key(name: str) -> str:
    return re.sub(r"[-_\s]", "", str(name).lower())


_BY_KEY = {_key(name): task for name, task in TASKS.items()}


def get_task(name: str) -> Task:
    """The registered task called ``name`` (case, ``-`` and ``_`` ignored: ``"SST-2"`` works).

    >>> get_task("STS-B").name, get_task("embedded_sst2").prefix
    ('stsb', 'sst2')
    >>> get_task("rtee")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown task 'rtee' (did you mean 'rte'?); valid tasks: boolq, cb, cola, copa, ..., world2-stsb; groups: embedded-glue, world2-glue
    """
    key = _key(name)
    if key in _BY_KEY:
        return _BY_KEY[key]
    message = f"unknown task {name!r}"
    suggestion = difflib.get_close_matches(key, list(_BY_KEY), n=1, cutoff=0.5)
    if suggestion:
        message += f" (did you mean {_BY_KEY[suggestion[0]].name!r}?)"
    groups = f"; groups: {', '.join(TASK_GROUPS)}" if TASK_GROUPS else ""
    raise ValueError(message + "; valid tasks: " + ", ".join(sorted(TASKS)) + groups)


def expand_task_names(names: list[str]) -> list[str]:
    """Task names with groups replaced by their members, in order.

    >>> expand_task_names(["rte", "embedded-glue"])[:3]
    ['rte', 'embedded-sst2', 'embedded-cola']
    """
    expanded: list[str] = []
    for name in names:
        group = next((members for group, members in TASK_GROUPS.items() if _key(group) == _key(name)), None)
        expanded += list(group) if group is not None else [name]
    return expanded
