"""Pretraining examples: documents packed into chunks, span-corrupted per step; supervised pairs.

    PretrainData.build(documents, tokenizer, chunk_length, supervised)
      ├─ tokenize every document, + EOS, concatenated     (T5 packs its corpus the same way)
      ├─ cut into chunks of `chunk_length` tokens          the last partial chunk is dropped
      └─ held out: the chunks of the last documents        a span-corruption loss to watch
    batch(step, rank, world)
      ├─ which chunks / pairs: a pure function of (seed, step)   resumable from the step alone
      ├─ span corruption of each chunk with a mask seeded by (seed, step, example)
      └─ this process's share (runners.finetune.batches.shard), padded

Chunks of 114 tokens give inputs of about 114 − 17 + 6 sentinels + EOS ≈ 104 tokens and
targets of about 17 + 6 + 1 ≈ 24 at the default noise (0.15, spans of 3).

>>> from runners.tasks.data import embedded_tokenizer
>>> tokenizer = embedded_tokenizer()
>>> data = PretrainData.build(["mia sold the lamp to tom ."] * 40, tokenizer, chunk_length=16, held_out=0.25)
>>> len(data.train_chunks[0]), len(data.eval_chunks) > 0
(16, True)
>>> batch = data.batch(step=0, batch_size=4, seed=1)
>>> batch["input_ids"].shape[0], int((batch["labels"] == tokenizer.convert_tokens_to_ids("<extra_id_0>")).sum())
(4, 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from runners.finetune.batches import IGNORE_INDEX, epoch_permutation, pad, shard

from .span_corruption import MEAN_SPAN_LENGTH, NOISE_DENSITY, corrupt_example, sentinel_ids


def pack(token_lists: Sequence[Sequence[int]], eos_id: int, chunk_length: int) -> np.ndarray:
    """(chunks, chunk_length) int32: the documents' tokens, each followed by EOS, end to end.

    >>> pack([[5, 6], [7]], eos_id=1, chunk_length=2)
    array([[5, 6],
           [1, 7]], dtype=int32)
    """
    stream = np.fromiter((t for tokens in token_lists for t in (*tokens, eos_id)), dtype=np.int32)
    usable = len(stream) // chunk_length * chunk_length
    return stream[:usable].reshape(-1, chunk_length)


def example_rng(seed: int, step: int, index: int, held_out: bool = False) -> np.random.Generator:
    """The generator of one example's mask: fixed by (seed, step, example), so a resumed run masks
    alike; held-out chunks draw from their own stream."""
    return np.random.default_rng([seed, int(held_out), step, index])


def _as_batch(sources: list[list[int]], targets: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    return {"input_ids": pad(sources, pad_id), "attention_mask": pad([[1] * len(s) for s in sources], 0),
            "labels": pad(targets, IGNORE_INDEX)}


@dataclass
class PretrainData:
    """Packed chunks (train and held out) and optional supervised (source, target) id pairs."""

    train_chunks: np.ndarray
    eval_chunks: np.ndarray
    sentinels: list[int]
    eos_id: int
    pad_id: int
    supervised: list[tuple[list[int], list[int]]] = field(default_factory=list)
    noise_density: float = NOISE_DENSITY
    mean_span_length: float = MEAN_SPAN_LENGTH

    @classmethod
    def build(cls, documents: Sequence[str], tokenizer, chunk_length: int, held_out: float = 0.02,
              supervised: Sequence[tuple[str, str]] = (), max_source_length: int = 128,
              max_target_length: int = 64, **noise) -> PretrainData:
        if chunk_length < 2:
            raise ValueError(f"chunk length must be at least 2 tokens, got {chunk_length}")
        encoded = tokenizer(list(documents), add_special_tokens=False)["input_ids"]
        held = max(1, int(len(encoded) * held_out)) if held_out > 0 else 0
        train = pack(encoded[: len(encoded) - held], tokenizer.eos_token_id, chunk_length)
        held_chunks = pack(encoded[len(encoded) - held:], tokenizer.eos_token_id, chunk_length) if held else train[:0]
        if len(train) == 0:
            raise ValueError(f"the corpus ({sum(map(len, encoded)):,} tokens) does not fill one chunk of {chunk_length} tokens")
        pairs = []
        if supervised:
            sources = tokenizer([s for s, _ in supervised], max_length=max_source_length, truncation=True)["input_ids"]
            targets = tokenizer([t for _, t in supervised], max_length=max_target_length, truncation=True)["input_ids"]
            pairs = [(list(s), list(t)) for s, t in zip(sources, targets)]
        return cls(train, held_chunks, sentinel_ids(tokenizer), tokenizer.eos_token_id, tokenizer.pad_token_id,
                   pairs, **noise)

    def steps_per_epoch(self, batch_size: int) -> int:
        return max(1, len(self.train_chunks) // batch_size)

    def chunk_indices(self, step: int, batch_size: int, seed: int) -> list[int]:
        """The chunks of global batch `step`: a seeded shuffle per pass over the corpus."""
        per_epoch = self.steps_per_epoch(batch_size)
        epoch, offset = divmod(step, per_epoch)
        order = epoch_permutation(len(self.train_chunks), seed, epoch)
        if batch_size > len(order):
            order = (order * (batch_size // len(order) + 1))
        return order[offset * batch_size:(offset + 1) * batch_size]

    def supervised_indices(self, step: int, batch_size: int, seed: int) -> list[int]:
        if not self.supervised or batch_size == 0:
            return []
        per_epoch = max(1, len(self.supervised) // batch_size)
        epoch, offset = divmod(step, per_epoch)
        order = epoch_permutation(len(self.supervised), seed + 7919, epoch)
        if batch_size > len(order):
            order = order * (batch_size // len(order) + 1)
        return order[offset * batch_size:(offset + 1) * batch_size]

    def corrupt_chunks(self, chunks: np.ndarray, seed: int, step: int,
                       held_out: bool = False) -> tuple[list[list[int]], list[list[int]]]:
        sources, targets = [], []
        for index, chunk in enumerate(chunks):
            source, target = corrupt_example(chunk.tolist(), example_rng(seed, step, index, held_out), self.sentinels,
                                             self.eos_id, self.noise_density, self.mean_span_length)
            sources.append(source)
            targets.append(target)
        return sources, targets

    def batch(self, step: int, batch_size: int, seed: int, world_size: int = 1, rank: int = 0) -> dict[str, torch.Tensor]:
        """This process's share of the span-corruption batch of `step`."""
        indices = self.chunk_indices(step, batch_size, seed)
        mine = shard(list(range(len(indices))), world_size, rank, 1)[0]
        sources, targets = self.corrupt_chunks(self.train_chunks[[indices[i] for i in mine]], seed, step)
        return _as_batch(sources, targets, self.pad_id)

    def supervised_batch(self, step: int, batch_size: int, seed: int, world_size: int = 1,
                         rank: int = 0) -> dict[str, torch.Tensor] | None:
        """This process's share of the supervised examples of `step` (None when there are none)."""
        indices = self.supervised_indices(step, batch_size, seed)
        mine = [indices[i] for i in shard(list(range(len(indices))), world_size, rank, 1)[0]]
        if not mine:
            return None
        return _as_batch([self.supervised[i][0] for i in mine], [self.supervised[i][1] for i in mine], self.pad_id)

    def eval_batches(self, batch_size: int, seed: int, limit: int = 512):
        """The held-out chunks, span-corrupted with fixed masks, in batches (the same at every evaluation)."""
        chunks = self.eval_chunks[:limit]
        for start in range(0, len(chunks), batch_size):
            sources, targets = self.corrupt_chunks(chunks[start:start + batch_size], seed, start, held_out=True)
            yield _as_batch(sources, targets, self.pad_id)
