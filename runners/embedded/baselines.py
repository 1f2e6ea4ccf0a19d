"""Bag-of-words baselines of the embedded benchmark: how far words alone get on each task.

    python -m runners.embedded.baselines        # the table in runners/embedded/README.md

A logistic regression (ridge regression for stsb) on binary word (and word-pair) features of each
input field, trained on the train split and scored on the test split with the task's metrics.
No task should be a keyword lookup: these numbers are what a model gets without composing
meaning (negation, roles, the main clause of a contrast, agreement, word order).

Needs scikit-learn (the project's ``test`` extra).
"""

from __future__ import annotations

import argparse
import sys

FEATURES = {"words": (1, 1), "words + word pairs": (1, 2)}


def featurize(task, rows: list[dict]) -> list[str]:
    """One string per row, every token tagged with its field, so pairs keep which side a word is on."""
    return [" ".join(f"{index}_{word}" for index, column in enumerate(task.source_columns)
                     for word in str(row[column]).split()) for row in rows]


def baseline_scores(task_name, ngram_range: tuple[int, int]) -> dict[str, float]:
    """The task's (a name or a ``Task``) test metrics for a bag-of-words model of the given n-gram range."""
    from runners.tasks import get_task
    from runners.tasks.data import load_task_splits

    task = get_task(task_name) if isinstance(task_name, str) else task_name
    splits = load_task_splits(task)
    return fit_and_score(task, splits["train"], splits["test"], ngram_range)


def fit_and_score(task, train_rows: list[dict], test_rows: list[dict], ngram_range: tuple[int, int]) -> dict[str, float]:
    """Bag-of-words fitted on `train_rows`, its predictions on `test_rows` scored with the task's metrics."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression, Ridge

    vectorizer = CountVectorizer(ngram_range=ngram_range, token_pattern=r"\S+", binary=True, lowercase=False)
    train = vectorizer.fit_transform(featurize(task, train_rows))
    test = vectorizer.transform(featurize(task, test_rows))
    gold = [row["label"] for row in train_rows]
    if task.labels is None:
        predictions = Ridge(alpha=1.0).fit(train, gold).predict(test)
        texts = [f"{value:.1f}" for value in predictions]
    else:
        predicted = LogisticRegression(max_iter=3000).fit(train, gold).predict(test)
        texts = [task.labels[int(label)] for label in predicted]
    return task.score(texts, test_rows)


def table(tasks=None) -> str:
    """The README's table for `tasks` (names or ``Task`` objects; default: the group embedded-glue)."""
    from runners.tasks import TASK_GROUPS

    lines = ["| task | " + " | ".join(FEATURES) + " |", "|---|" + "---|" * len(FEATURES)]
    for name in tasks or TASK_GROUPS["embedded-glue"]:
        cells = [" / ".join(f"{k} {v:.1f}" for k, v in baseline_scores(name, n).items()) for n in FEATURES.values()]
        lines.append(f"| {getattr(name, 'name', name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m runners.embedded.baselines", description=__doc__.split("\n\n")[0]).parse_args(argv)
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
