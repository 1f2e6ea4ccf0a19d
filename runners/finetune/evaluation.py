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
from transformers import GenerationConfig

from .batches import collate_sources


@dataclass
class Evaluation:
    """Scores of one split and the decoded predictions they came from."""

    scores: dict[str, float]
    predictions: list[str]


def generation_config(tokenizer, max_new_tokens: int, model=None, num_beams: int = 1) -> GenerationConfig:
    """Greedy (or `num_beams` beam search) decoding of at most `max_new_tokens` tokens (T5 starts from the pad id)."""
    start = getattr(getattr(model, "config", None), "decoder_start_token_id", None)
    return GenerationConfig(
        max_new_tokens=max_new_tokens, do_sample=False, num_beams=num_beams,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=start if start is not None else tokenizer.pad_token_id,
    )


@torch.no_grad()
def generate_predictions(model, tokenizer, sources: Sequence[Sequence[int]], batch_size: int, max_new_tokens: int,
                         device: torch.device, autocast: Callable[[], AbstractContextManager] = nullcontext,
                         progress=None, num_beams: int = 1) -> list[str]:
    """Decoded greedy (or beam-search) generations for tokenized `sources`, in their order."""
    was_training = model.training
    model.eval()
    config = generation_config(tokenizer, max_new_tokens, model, num_beams)
    by_length = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    predictions: list[str] = [""] * len(sources)
    for start in range(0, len(by_length), batch_size):
        chosen = by_length[start:start + batch_size]
        batch = {k: v.to(device) for k, v in collate_sources([sources[i] for i in chosen], tokenizer.pad_token_id).items()}
        with autocast():
            output = model.generate(**batch, generation_config=config)
        for index, text in zip(chosen, tokenizer.batch_decode(output, skip_special_tokens=True)):
            predictions[index] = text.strip()
        if progress is not None:
            progress.update(len(chosen))
    model.train(was_training)
    return predictions


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
