"""Batches grouped by length and the dropout setting: the two settings that make the embedded protocol
fast on a CPU (runners/finetune/protocol.py). Grouping must keep every epoch a permutation that
depends on (seed, epoch) alone, pad less than plain shuffled batches, and `--dropout` must reach
every dropout module of the trained model; the paper's tasks keep neither."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import surgery
from runners.finetune.batches import epoch_permutation, global_batches, length_grouped_batches
from runners.finetune.errors import UsageError
from runners.finetune.arguments import check_options
from runners.finetune.run import train_config
from runners.finetune.training import TrainConfig, train
from runners.tasks import get_task


def padded_tokens(batches, lengths) -> int:
    return sum(max(lengths[i] for i in batch) * len(batch) for batch in batches)


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(1, 80), min_size=1, max_size=300), batch_size=st.integers(1, 40),
       min_size=st.integers(1, 4), seed=st.integers(0, 1000), epoch=st.integers(0, 50))
def test_every_example_once_an_epoch_and_the_same_short_batch_rule(lengths, batch_size, min_size, seed, epoch):
    order = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(seed)).tolist()
    batches = length_grouped_batches(order, lengths, batch_size, seed, epoch, min_size=min_size)
    plain = global_batches(order, batch_size, min_size)
    visited = sorted(i for batch in batches for i in batch)
    assert len(batches) == len(plain)
    assert len(visited) == sum(len(batch) for batch in plain)   # as many dropped: none, or a too-short tail
    assert len(set(visited)) == len(visited) and set(visited) <= set(order)
    assert all(len(batch) <= batch_size for batch in batches)
    assert batches == length_grouped_batches(order, lengths, batch_size, seed, epoch, min_size=min_size)


def test_batches_pad_far_less_and_change_with_the_epoch():
    lengths = torch.randint(8, 60, (2000,), generator=torch.Generator().manual_seed(0)).tolist()
    order = epoch_permutation(2000, seed=1, epoch=0)
    grouped = length_grouped_batches(order, lengths, 32, seed=1, epoch=0)
    plain = global_batches(order, 32)
    real = sum(lengths)
    # plain shuffled batches of 32 pad to near the maximum (about 58 tokens an example, real mean 33.5)
    assert padded_tokens(grouped, lengths) - real < 0.1 * (padded_tokens(plain, lengths) - real)
    again = length_grouped_batches(epoch_permutation(2000, seed=1, epoch=1), lengths, 32, seed=1, epoch=1)
    assert {frozenset(b) for b in again} != {frozenset(b) for b in grouped}
    # batches come in random order, not shortest first
    maxima = [max(lengths[i] for i in batch) for batch in grouped]
    assert maxima != sorted(maxima) and maxima != sorted(maxima, reverse=True)


def tiny_adapter_model(tokenizer):
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    model = T5ForConditionalGeneration(T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=1,
                                                num_heads=4, decoder_start_token_id=0, dropout_rate=0.3))
    surgery.apply(model, "adapter")
    return model


def test_dropout_reaches_every_dropout_of_the_trained_model(tmp_path):
    from runners.tasks.data import embedded_tokenizer, load_embedded

    tokenizer = embedded_tokenizer()
    splits = {name: rows[:16] for name, rows in load_embedded().items()}
    model = tiny_adapter_model(tokenizer)
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(m.p == 0.3 for m in dropouts)
    config = TrainConfig(output_dir=tmp_path, epochs=1, batch_size=8, warmup_steps=0, learning_rate=3e-3,
                         progress_bars=False, print_epochs=False, dropout=0.0, group_by_length=True)
    outcome = train(model, tokenizer, get_task("embedded-sst2"), splits, config)
    assert outcome.completed and outcome.progress.global_step == 2
    assert all(m.p == 0.0 for m in dropouts)
    model.train()   # without dropout, train mode is deterministic
    batch = tokenizer(["sst2 sentence: the lamp was good ."], return_tensors="pt")
    labels = tokenizer(["positive"], return_tensors="pt").input_ids
    first, second = (model(**batch, labels=labels).loss for _ in range(2))
    assert torch.equal(first, second)


def test_the_embedded_protocol_turns_both_on_and_the_papers_keeps_neither():
    recipe = surgery.load_recipe("adapter")
    embedded, _ = train_config({}, get_task("embedded-sst2"), Path("x"), 1, None, recipe=recipe)
    paper, _ = train_config({}, get_task("rte"), Path("x"), 1, None, recipe=recipe)
    assert (embedded.dropout, embedded.group_by_length) == (0.0, True)
    assert (paper.dropout, paper.group_by_length) == (None, False)
    given_, _ = train_config({"dropout": 0.2, "group_by_length": False}, get_task("embedded-sst2"), Path("x"),
                             1, None, recipe=recipe)
    assert (given_.dropout, given_.group_by_length) == (0.2, False)
    low, _ = train_config({"low_resource": 100}, get_task("embedded-sst2"), Path("x"), 1, None, recipe=recipe)
    assert (low.epochs, low.eval_every) == (200, 20)


@pytest.mark.parametrize("value", [1.0, -0.1, "0.1", True, float("nan")])
def test_a_bad_dropout_is_a_usage_error_naming_it(value):
    with pytest.raises(UsageError, match="--dropout"):
        check_options({"dropout": value})
