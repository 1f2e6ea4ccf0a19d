"""Evaluation: predictions on a split (greedy `generate()`; a classifier's argmax), scored with the task's metrics.

With several processes each one generates for every `world_size`-th row; the predictions are
gathered back into the split's order, so every process computes the same scores.

    evaluate(model, tokenizer, task, rows, sources)
      ├─ this process's rows, sorted by length    (less padding per batch)
      ├─ kind.predict: model.generate(greedy)     under the run's autocast (runners.finetune.model_kind)
      ├─ gather predictions from every process    (accelerate.utils.gather_object)
      └─ task.score(predictions, rows)            {"accuracy": 87.5, ...} on the 0..100 scale
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch


@dataclass
class Evaluation:
    """Scores of one split and the decoded predictions they came from."""

    scores: dict[str, float]
    predictions: list[str]


def evaluate(model, tokenizer, task, rows: Sequence[dict], sources: Sequence[Sequence[int]], *, batch_size: int,
             max_new_tokens: int, device: torch.device, world_size: int = 1, rank: int = 0,
             autocast: Callable[[], AbstractContextManager] = nullcontext, progress=None, kind=None) -> Evaluation:
    """Predict for `rows` (tokenized as `sources`) on every process and score them all.

    `autocast` makes a fresh context manager per batch (e.g. `accelerator.autocast`); `kind`
    (`runners.finetune.model_kind`, default: read off the model) says how a prediction is made.
    """
    from .model_kind import kind_of_model

    kind = kind or kind_of_model(model)
    mine = list(range(rank, len(rows), world_size))
    local = kind.predict(model, tokenizer, task, [sources[i] for i in mine], batch_size, max_new_tokens,
                         device, autocast, progress)
    if world_size > 1:
        from accelerate.utils import gather_object

        gathered = gather_object([(i, p) for i, p in zip(mine, local)])
        predictions = [""] * len(rows)
        for index, prediction in gathered:
            predictions[index] = prediction
    else:
        predictions = local
    return Evaluation(task.score(predictions, list(rows)), predictions)
