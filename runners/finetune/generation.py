"""Greedy (or beam-search) `generate()` of a sequence-to-sequence model on tokenized sources, decoded.

>>> import torch
>>> from transformers import T5Config, T5ForConditionalGeneration
>>> from runners.tasks.data import embedded_tokenizer
>>> tokenizer = embedded_tokenizer()
>>> model = T5ForConditionalGeneration(T5Config(vocab_size=len(tokenizer), d_model=16, d_kv=4, d_ff=32, num_layers=1,
...                                             num_heads=2, decoder_start_token_id=0))
>>> predictions = generate_predictions(model, tokenizer, [[5, 6, 1], [7, 1]], batch_size=2, max_new_tokens=3,
...                                    device=torch.device("cpu"))
>>> len(predictions), all(isinstance(p, str) for p in predictions)
(2, True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext

import torch
from transformers import GenerationConfig

from .batches import collate_sources


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
