"""Hooks registered on sublayers that the tracer inlines still fire, in eager mode's order."""

from __future__ import annotations

import pytest
import torch

import surgery
from conftest import tiny_model


def record_calls(module: torch.nn.Module, log: list[str], name: str) -> None:
    module.register_forward_pre_hook(lambda m, args: log.append(f"pre {name}"))
    module.register_forward_hook(lambda m, args, output: log.append(f"post {name}"))


def test_pre_and_post_hooks_of_inlined_sublayers_fire_like_in_eager_mode(batch):
    eager, spliced = tiny_model("v1.0"), tiny_model("v1.0")
    surgery.apply(spliced, "adapter")
    logs = {}
    for label, model in (("eager", eager), ("spliced", spliced)):
        log: list[str] = []
        # T5LayerSelfAttention / T5LayerCrossAttention / T5LayerFF: inlined by the tracer.
        for index, layer in enumerate(model.decoder.block[1].layer):
            record_calls(layer, log, f"decoder.block.1.layer.{index}")
        model(**batch)
        logs[label] = log
    assert len(logs["eager"]) == 6
    assert logs["spliced"] == logs["eager"]


def test_pre_hook_sees_the_inputs_of_the_inlined_sublayer(batch):
    model = tiny_model("v1.0")
    surgery.apply(model, "adapter")
    seen = []
    model.encoder.block[0].layer[1].register_forward_pre_hook(lambda m, args: seen.append(args[0].shape))
    model(**batch)
    assert seen == [torch.Size([3, 9, 64])]  # (batch, source length, d_model) entering the FFN sublayer


def test_pre_hook_that_replaces_inputs_is_refused_with_the_module_named(batch):
    model = tiny_model("v1.0")
    surgery.apply(model, "adapter")
    model.encoder.block[0].layer[1].register_forward_pre_hook(lambda m, args: (args[0] * 2,))
    with pytest.raises(RuntimeError, match="pre-hook on T5LayerFF returned new inputs"):
        model(**batch)
