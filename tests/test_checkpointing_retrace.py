"""Activation checkpointing on a spliced model whose blocks must be retraced (after deepcopy / pickling).

A copy drops the generated forward and retraces on its first call; with checkpointing switched on,
that retrace used to fail (transformers' checkpointing check met traced values)."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from transformers import T5Config, T5ForConditionalGeneration

import surgery


def spliced_model():
    torch.manual_seed(0)
    config = T5Config(vocab_size=96, d_model=128, d_kv=32, d_ff=128, num_layers=2, num_heads=4, dropout_rate=0.0,
                      decoder_start_token_id=0)
    return surgery.apply(T5ForConditionalGeneration(config), "compacter++")


def trained_gradients(model):
    ids = torch.arange(2, 16).reshape(2, 7)
    model.train()
    model(input_ids=ids, labels=ids).loss.backward()
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("copy_model", [copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))], ids=["deepcopy", "pickle"])
def test_a_copy_with_checkpointing_on_retraces_and_gives_the_plain_gradients(copy_model, monkeypatch):
    model = spliced_model()
    copied = copy_model(model)
    import transformers.modeling_utils as modeling_utils

    recomputed = []
    original = modeling_utils.checkpoint       # what enabling binds into every block's call
    monkeypatch.setattr(modeling_utils, "checkpoint", lambda f, *a, **k: recomputed.append(1) or original(f, *a, **k))
    if hasattr(copied, "activation_checkpointing_enable"):   # transformers >= 5.24's name for it
        copied.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        copied.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    checkpointed = trained_gradients(copied)
    assert len(recomputed) == 4                      # every block of both stacks ran under checkpointing
    assert all(block.gradient_checkpointing for block in copied.encoder.block)   # and it is still on
    plain = trained_gradients(model)
    assert checkpointed.keys() == plain.keys()
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-5, atol=1e-7, msg=name)
