"""Span corruption (runners.pretrain.span_corruption) against hand-written examples and the
objective's definition: density, span lengths, sentinel order, and reconstruction of the text."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runners.pretrain.span_corruption import corrupt, corrupt_example, noise_mask, sentinel_ids

SENTINELS = list(range(1000, 900, -1))  # <extra_id_0> = 1000, <extra_id_1> = 999, ...


def reconstruct(inputs: list[int], targets: list[int], sentinels: list[int]) -> list[int]:
    """Written independently of the code under test: put each target span back where its
    sentinel stands in the input."""
    spans: dict[int, list[int]] = {}
    current = None
    for token in targets:
        if token in sentinels:
            current = token
            spans[current] = []
        else:
            assert current is not None, "the target must start with a sentinel"
            spans[current].append(token)
    text = []
    for token in inputs:
        text.extend(spans[token] if token in sentinels else [token])
    return text


def test_hand_written_example():
    tokens = [10, 11, 12, 13, 14, 15, 16, 17]
    mask = np.array([0, 1, 1, 0, 0, 1, 0, 1], dtype=bool)
    inputs, targets = corrupt(tokens, mask, SENTINELS)
    assert inputs == [10, 1000, 13, 14, 999, 16, 998]
    assert targets == [1000, 11, 12, 999, 15, 998, 17]


def test_corrupt_example_appends_eos_to_both_sides():
    source, target = corrupt_example(list(range(10, 40)), np.random.default_rng(3), SENTINELS, eos_id=1)
    assert source[-1] == 1 and target[-1] == 1
    assert reconstruct(source[:-1], target[:-1], SENTINELS) == list(range(10, 40))


@settings(max_examples=200, deadline=None)
@given(length=st.integers(2, 300), seed=st.integers(0, 2**32 - 1))
def test_reconstruction_and_sentinel_order(length, seed):
    tokens = list(range(5, 5 + length))
    mask = noise_mask(length, np.random.default_rng(seed))
    inputs, targets = corrupt(tokens, mask, SENTINELS)
    assert reconstruct(inputs, targets, SENTINELS) == tokens
    used_in_input = [t for t in inputs if t in SENTINELS]
    used_in_target = [t for t in targets if t in SENTINELS]
    assert used_in_input == used_in_target == SENTINELS[: len(used_in_input)]  # 0, 1, 2, ... in order
    assert not mask[0], "T5's mask starts with kept tokens"
    assert 1 <= mask.sum() <= length - 1


def test_noise_density_and_mean_span_length_over_many_samples():
    rng = np.random.default_rng(0)
    dropped = total = spans = 0
    for _ in range(2000):
        length = int(rng.integers(20, 300))
        mask = noise_mask(length, rng)
        dropped, total = dropped + int(mask.sum()), total + length
        spans += int(np.sum(mask[1:] & ~mask[:-1]) + mask[0])
    assert abs(dropped / total - 0.15) < 0.005
    assert abs(dropped / spans - 3.0) < 0.15


def test_spans_are_placed_uniformly_not_always_at_the_same_place():
    first_noise = [int(np.argmax(noise_mask(100, np.random.default_rng(seed)))) for seed in range(200)]
    assert len(set(first_noise)) > 20


def test_other_densities_and_span_lengths():
    rng = np.random.default_rng(1)
    masks = [noise_mask(200, rng, noise_density=0.3, mean_span_length=5.0) for _ in range(300)]
    assert all(m.sum() == 60 for m in masks)
    spans = sum(int(np.sum(m[1:] & ~m[:-1])) for m in masks)
    assert spans == 300 * 12  # round(60 / 5) spans in every mask


def test_too_short_and_too_many_spans_are_refused():
    with pytest.raises(ValueError, match="at least 2 tokens"):
        noise_mask(1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="more spans than"):
        corrupt([1, 2, 3, 4, 5], np.array([0, 1, 0, 1, 0], dtype=bool), sentinels=[99])


def test_text_round_trip_with_the_embedded_tokenizer():
    from runners.tasks.data import embedded_tokenizer

    tokenizer = embedded_tokenizer()
    sentinels = sentinel_ids(tokenizer)
    text = "mia sold the red lamp to tom . question : who owns the lamp ? answer : tom ."
    tokens = tokenizer(text, add_special_tokens=False).input_ids
    source, target = corrupt_example(tokens, np.random.default_rng(7), sentinels, tokenizer.eos_token_id)
    assert "<extra_id_0>" in tokenizer.decode(source) and tokenizer.decode(target).startswith("<extra_id_0>")
    restored = reconstruct(source[:-1], target[:-1], sentinels)
    assert tokenizer.decode(restored) == text
