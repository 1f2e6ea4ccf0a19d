"""The Compacter paper's evaluation metrics, as plain functions on Python lists.

Every score is on the paper's 0..100 scale. Predictions are the strings a text-to-text model
decodes; references are the gold target strings (or numbers, for the correlations).

A prediction that is not a valid label is always scored as wrong, never skipped; the exact rule
per metric:

=====================  ==================================================================
metric                 an invalid prediction ...
=====================  ==================================================================
accuracy               does not equal its reference, so it counts as an error
f1_binary              counts as "not the positive class" (a false negative when the
                       reference is positive, harmless otherwise, as any negative guess)
macro_f1               is a miss for its reference's class and a false positive for no
                       class (sklearn's ``f1_score(labels=valid, average="macro")``)
matthews_corrcoef      is replaced by a wrong valid label: the first label in ``labels``
                       that differs from the reference (for two labels: the other one)
STS-B (parse_scores)   is replaced by the end of the 0..5 scale farthest from the reference
multirc_scores         as f1_binary for F1a; its question fails exact match
=====================  ==================================================================

These rules are why the metrics are written out here (scikit-learn, a test-only dependency, would
count an invalid prediction as a class of its own); the tests check every function against
scikit-learn / SciPy with the invalid predictions mapped as the table says.

>>> accuracy(["yes", "no", "maybe"], ["yes", "no", "no"])
66.66666666666667
>>> round(f1_binary(["yes", "garbage"], ["yes", "yes"], positive="yes"), 2)
66.67
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Hashable, Sequence

__all__ = [
    "accuracy",
    "f1_binary",
    "macro_f1",
    "matthews_corrcoef",
    "pearson",
    "spearman",
    "parse_scores",
    "finite_number",
    "multirc_scores",
    "normalize_answer",
    "token_f1",
    "record_scores",
]


def _check_lengths(predictions: Sequence, references: Sequence) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise ValueError("no predictions to score")


def accuracy(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Percentage of predictions equal to their reference.

    >>> accuracy(["a", "b"], ["a", "a"])
    50.0
    """
    _check_lengths(predictions, references)
    return 100.0 * sum(p == r for p, r in zip(predictions, references)) / len(references)


def _f1_from_counts(true_positives: int, false_positives: int, false_negatives: int) -> float:
    """F1 in 0..1; 0 when there is nothing positive predicted or in the references."""
    denominator = 2 * true_positives + false_positives + false_negatives
    return 0.0 if denominator == 0 else 2 * true_positives / denominator


def f1_binary(predictions: Sequence[str], references: Sequence[str], positive: str) -> float:
    """F1 of the ``positive`` class; anything else predicted (invalid text included) is negative.

    >>> f1_binary(["dup", "not", "dup"], ["dup", "dup", "not"], positive="dup")
    50.0
    """
    _check_lengths(predictions, references)
    predicted = [p == positive for p in predictions]
    gold = [r == positive for r in references]
    true_positives = sum(p and g for p, g in zip(predicted, gold))
    false_positives = sum(p and not g for p, g in zip(predicted, gold))
    false_negatives = sum(g and not p for p, g in zip(predicted, gold))
    return 100.0 * _f1_from_counts(true_positives, false_positives, false_negatives)


def macro_f1(predictions: Sequence[str], references: Sequence[str], labels: Sequence[str]) -> float:
    """Unweighted mean over ``labels`` of each label's one-vs-rest F1 (the CB metric).

    An invalid prediction is a miss for its reference's class and counts against no class.

    >>> macro_f1(["a", "b", "?"], ["a", "b", "c"], labels=["a", "b", "c"])
    66.66666666666667
    """
    _check_lengths(predictions, references)
    scores = []
    for label in labels:
        true_positives = sum(p == label and r == label for p, r in zip(predictions, references))
        false_positives = sum(p == label and r != label for p, r in zip(predictions, references))
        false_negatives = sum(p != label and r == label for p, r in zip(predictions, references))
        scores.append(_f1_from_counts(true_positives, false_positives, false_negatives))
    return 100.0 * sum(scores) / len(scores)


def _replace_invalid_with_wrong_label(
    predictions: Sequence[str], references: Sequence[str], labels: Sequence[str]
) -> list[str]:
    """Each prediction outside ``labels`` becomes the first label that differs from its reference."""
    valid = set(labels)
    replaced = []
    for prediction, reference in zip(predictions, references):
        if prediction not in valid:
            prediction = next(label for label in labels if label != reference)
        replaced.append(prediction)
    return replaced


def matthews_corrcoef(predictions: Sequence[str], references: Sequence[str], labels: Sequence[str]) -> float:
    """Matthews correlation (multi-class R_K form), times 100; 0 when it is undefined.

    An invalid prediction is replaced by a wrong valid label (see the module docstring).

    >>> matthews_corrcoef(["1", "0", "1", "0"], ["1", "0", "0", "0"], labels=["0", "1"])
    57.73502691896258
    """
    _check_lengths(predictions, references)
    if len(set(labels)) < 2:
        raise ValueError(f"matthews_corrcoef needs at least two labels, got {list(labels)}")
    predictions = _replace_invalid_with_wrong_label(predictions, references, labels)
    total = len(references)
    correct = sum(p == r for p, r in zip(predictions, references))
    predicted_counts = Counter(predictions)
    gold_counts = Counter(references)
    classes = set(predicted_counts) | set(gold_counts)
    covariance = correct * total - sum(predicted_counts[c] * gold_counts[c] for c in classes)
    predicted_spread = total * total - sum(count * count for count in predicted_counts.values())
    gold_spread = total * total - sum(count * count for count in gold_counts.values())
    if predicted_spread == 0 or gold_spread == 0:
        return 0.0
    return 100.0 * covariance / math.sqrt(predicted_spread * gold_spread)


def pearson(predictions: Sequence[float], references: Sequence[float]) -> float:
    """Pearson correlation times 100; 0 when either side is constant (correlation undefined).

    >>> round(pearson([1.0, 2.0, 3.0], [2.0, 4.0, 7.0]), 4)
    99.3399
    """
    _check_lengths(predictions, references)
    x = [float(v) for v in predictions]
    y = [float(v) for v in references]
    if len(set(x)) < 2 or len(set(y)) < 2:  # constant: the mean's rounding would leave a spread of ~1e-17
        return 0.0
    mean_x, mean_y = math.fsum(x) / len(x), math.fsum(y) / len(y)
    dx = [v - mean_x for v in x]
    dy = [v - mean_y for v in y]
    spread = math.sqrt(math.fsum(a * a for a in dx) * math.fsum(b * b for b in dy))
    if spread == 0.0:
        return 0.0
    value = math.fsum(a * b for a, b in zip(dx, dy)) / spread
    return 100.0 * max(-1.0, min(1.0, value))


def _average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks; tied values share the mean of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        shared_rank = (start + end) / 2 + 1
        for position in range(start, end + 1):
            ranks[order[position]] = shared_rank
        start = end + 1
    return ranks


def spearman(predictions: Sequence[float], references: Sequence[float]) -> float:
    """Spearman rank correlation times 100 (Pearson on average ranks); 0 when undefined.

    >>> spearman([1.0, 2.0, 3.0], [2.0, 4.0, 7.0])
    100.0
    """
    _check_lengths(predictions, references)
    return pearson(_average_ranks([float(v) for v in predictions]), _average_ranks([float(v) for v in references]))


def parse_scores(
    predictions: Sequence[str], references: Sequence[float], low: float = 0.0, high: float = 5.0
) -> list[float]:
    """Turn decoded STS-B predictions into numbers for :func:`pearson` / :func:`spearman`.

    A parsable finite number is kept as it is (no clipping, no snapping to the 0.2 grid). Anything
    else is replaced by whichever end of the ``low..high`` scale is farther from the reference, the
    most wrong guess a model could make for that pair.

    >>> parse_scores(["3.4", " 1 ", "oops", "nan"], [3.0, 1.0, 4.2, 1.0])
    [3.4, 1.0, 0.0, 5.0]
    """
    _check_lengths(predictions, references)
    parsed = []
    for prediction, reference in zip(predictions, references):
        value = finite_number(prediction)
        if value is None:
            value = low if abs(float(reference) - low) >= abs(float(reference) - high) else high
        parsed.append(value)
    return parsed


def finite_number(value: object) -> float | None:
    """`value` as a finite float, or None: what counts as a number in a prediction or a label (a bool
    does not, nor nan or inf).

    >>> finite_number(" 3.5 "), finite_number("nan"), finite_number("three"), finite_number(True)
    (3.5, None, None, None)
    """
    if isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def multirc_scores(
    predictions: Sequence[str],
    references: Sequence[str],
    question_ids: Sequence[Hashable],
    positive: str = "True",
) -> dict[str, float]:
    """MultiRC's two metrics: ``f1a`` and ``em``, each 0..100.

    Every row is one answer option labelled ``positive`` ("True") or not. ``f1a`` is the binary
    F1 of the positive class over all answer options; ``em`` is the share of questions (rows
    grouped by ``question_ids``, e.g. ``(paragraph, question)`` from MultiRC's ``idx``) whose
    options are all predicted right. An invalid prediction is "not positive" for F1a and wrong
    for EM.

    >>> scores = multirc_scores(["True", "False", "True"], ["True", "False", "False"], [0, 0, 1])
    >>> round(scores["f1a"], 2), scores["em"]
    (66.67, 50.0)
    """
    _check_lengths(predictions, references)
    if len(question_ids) != len(references):
        raise ValueError(f"{len(question_ids)} question ids but {len(references)} references")
    all_right: dict[Hashable, bool] = {}
    for prediction, reference, question in zip(predictions, references, question_ids):
        all_right[question] = all_right.get(question, True) and prediction == reference
    return {
        "f1a": f1_binary(predictions, references, positive=positive),
        "em": 100.0 * sum(all_right.values()) / len(all_right),
    }


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD-style normalisation: lower case, drop punctuation and articles, squeeze spaces.

    >>> normalize_answer("The  U.S. Army!")
    'us army'
    """
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def token_f1(prediction: str, gold: str) -> float:
    """Bag-of-tokens F1 (0..1) between two answers after :func:`normalize_answer`.

    >>> token_f1("the big dog", "a dog")
    0.6666666666666666
    """
    predicted_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    common = sum((Counter(predicted_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision = common / len(predicted_tokens)
    recall = common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def record_scores(predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> dict[str, float]:
    """ReCoRD's ``f1`` and ``em`` (0..100): per query, the best over its gold answers.

    A query with no gold answer scores 0 on both.

    >>> record_scores(["Obama", "the Senate"], [["Barack Obama", "Obama"], ["Congress"]])
    {'f1': 50.0, 'em': 50.0}
    """
    _check_lengths(predictions, answers)
    f1_total = exact_total = 0.0
    for prediction, golds in zip(predictions, answers):
        if isinstance(golds, str):
            raise ValueError(f"each entry of answers must be a list of strings, got the string {golds!r}")
        if not golds:
            continue
        f1_total += max(token_f1(prediction, gold) for gold in golds)
        exact_total += max(float(normalize_answer(prediction) == normalize_answer(gold)) for gold in golds)
    return {"f1": 100.0 * f1_total / len(answers), "em": 100.0 * exact_total / len(answers)}
