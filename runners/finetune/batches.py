"""Tokenized examples and the deterministic order in which training visits them.

The order of a training run is a pure function of ``(seed, epoch)``: every process computes the
same global batches, then takes its own share. That is what makes a run resumable from an
``(epoch, step)`` position alone, and what makes 1 process and N processes see the same global
batch::

    epoch_permutation(n, seed, epoch)         [17, 3, 9, 0, 12, ...]      same on every process
      └─ global_batches(order, batch_size)    [[17, 3, 9, 0], [12, ...]]  one list per optimizer step
           └─ shard(batch, world, rank, k)    rank 1 of 2, k = 2 micro-batches: [[9], [0]]

With ``group_by_length``, `length_grouped_batches` replaces `global_batches`: windows of the same
shuffled order are sorted by source length before they are cut, so a batch pads little, and the
batches are then shuffled (again a pure function of ``(seed, epoch)``).

>>> order = epoch_permutation(10, seed=1, epoch=0)
>>> sorted(order) == list(range(10)) and order != epoch_permutation(10, seed=1, epoch=1)
True
>>> global_batches(list(range(10)), batch_size=4, min_size=2)
[[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
>>> global_batches(list(range(9)), batch_size=4, min_size=2)   # a last batch of 1 cannot feed 2 shards
[[0, 1, 2, 3], [4, 5, 6, 7]]
>>> shard([0, 1, 2, 3, 4], world_size=2, rank=1, micro_batches=2)
[[3], [4]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

IGNORE_INDEX = -100  # label positions the loss skips (padding)


@dataclass
class EncodedExample:
    """Token ids of one (source, target) pair; the target ends with EOS. A classifier's example has
    no target tokens but a `label`: the class index, or the number for regression."""

    source_ids: list[int]
    target_ids: list[int]
    label: int | float | None = None


def encode_pairs(tokenizer, pairs: Sequence[tuple[str, str]], max_source_length: int,
                 max_target_length: int) -> list[EncodedExample]:
    """Tokenize (source, target) pairs, truncating each side (EOS kept as the last token)."""
    sources = tokenizer([s for s, _ in pairs], max_length=max_source_length, truncation=True)["input_ids"]
    targets = tokenizer([t for _, t in pairs], max_length=max_target_length, truncation=True)["input_ids"]
    return [EncodedExample(list(s), list(t)) for s, t in zip(sources, targets)]


def encode_sources(tokenizer, sources: Sequence[str], max_source_length: int) -> list[list[int]]:
    """Token ids of source strings alone (evaluation inputs)."""
    return [list(ids) for ids in tokenizer(list(sources), max_length=max_source_length, truncation=True)["input_ids"]]


def epoch_permutation(size: int, seed: int, epoch: int) -> list[int]:
    """The order of the training examples in `epoch`: a seeded shuffle, independent of any global RNG."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(size, generator=generator).tolist()


def global_batches(order: Sequence[int], batch_size: int, min_size: int = 1) -> list[list[int]]:
    """Consecutive batches of `batch_size`; a short last batch is kept if it has `min_size` examples.

    `min_size` is (processes × accumulation steps): every process must get a non-empty micro-batch.
    """
    batches = [list(order[i:i + batch_size]) for i in range(0, len(order), batch_size)]
    if batches and len(batches[-1]) < min_size:
        batches.pop()
    return batches


def length_grouped_batches(order: Sequence[int], lengths: Sequence[int], batch_size: int, seed: int, epoch: int,
                           min_size: int = 1, window: int = 16) -> list[list[int]]:
    """`global_batches` of examples of similar length, in a seeded random order.

    The shuffled `order` is cut into windows of `window` batches; each window is sorted by
    `lengths` (stable) and cut into batches; the batches of all windows are then shuffled. Every
    example is still visited once an epoch, and which examples share a batch changes with the epoch.
    As in `global_batches`, a short last batch (of the last window) is kept if it has `min_size`.

    >>> lengths = [5, 1, 4, 2, 6, 3]
    >>> batches = length_grouped_batches([0, 1, 2, 3, 4, 5], lengths, batch_size=2, seed=0, epoch=0, window=3)
    >>> sorted(sorted(lengths[i] for i in batch) for batch in batches)
    [[1, 2], [3, 4], [5, 6]]
    """
    span = batch_size * window
    grouped = [index for start in range(0, len(order), span)
               for index in sorted(order[start:start + span], key=lambda i: lengths[i])]
    batches = global_batches(grouped, batch_size, min_size)
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch + 7_919)
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def split_evenly(items: Sequence[int], parts: int) -> list[list[int]]:
    """`parts` contiguous pieces whose sizes differ by at most one (the first ones are larger).

    >>> split_evenly([1, 2, 3, 4, 5], 3)
    [[1, 2], [3, 4], [5]]
    """
    quotient, remainder = divmod(len(items), parts)
    pieces, start = [], 0
    for part in range(parts):
        end = start + quotient + (1 if part < remainder else 0)
        pieces.append(list(items[start:end]))
        start = end
    return pieces


def shard(batch: Sequence[int], world_size: int, rank: int, micro_batches: int) -> list[list[int]]:
    """This process's micro-batches of one global batch (rank's share, split for accumulation)."""
    return split_evenly(split_evenly(batch, world_size)[rank], micro_batches)


def pad(sequences: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    """Right-pad to the longest sequence: (B, T) long tensor."""
    length = max(len(s) for s in sequences)
    return torch.tensor([list(s) + [value] * (length - len(s)) for s in sequences], dtype=torch.long)


def collate(examples: Sequence[EncodedExample], pad_token_id: int) -> dict[str, torch.Tensor]:
    """input_ids / attention_mask (B, S) and labels (B, T) with IGNORE_INDEX on padding.

    Not `transformers.DataCollatorForSeq2Seq`: it gives the same tensors only for tokenizers that
    pad on the right; for the others it left-pads the labels too, so T5's decoder would start on padding.
    """
    input_ids = pad([e.source_ids for e in examples], pad_token_id)
    attention_mask = pad([[1] * len(e.source_ids) for e in examples], 0)
    labels = pad([e.target_ids for e in examples], IGNORE_INDEX)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def collate_sources(sources: Sequence[Sequence[int]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """input_ids / attention_mask (B, S) for generation."""
    return {"input_ids": pad(sources, pad_token_id), "attention_mask": pad([[1] * len(s) for s in sources], 0)}
