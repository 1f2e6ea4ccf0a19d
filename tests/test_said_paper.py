"""Intrinsic-SAID as the paper ran it: norm-preserving projections per tensor, the output layer frozen."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import surgery
from conftest import tiny_model
from methods.fastfood import Fastfood

DIMENSION = 300


def said(variant: str = "v1.0", **options) -> nn.Module:
    model = tiny_model(variant)
    surgery.apply(model, {"method": "intrinsic_said", "options": {"dimension": DIMENSION, **options}})
    return model


def mean_squared_ratio(projection: Fastfood, draws: int = 16, seed: int = 0) -> float:
    """The mean over random z of ‖P z‖² / ‖z‖² (float64 norms)."""
    generator = torch.Generator().manual_seed(seed)
    ratios = []
    for _ in range(draws):
        z = torch.randn(projection.in_features, generator=generator)
        with torch.no_grad():
            ratios.append(projection(z).double().pow(2).sum().item() / z.double().pow(2).sum().item())
    return sum(ratios) / len(ratios)


@pytest.mark.parametrize("variant", ["v1.0", "v1.1"])
def test_every_tensors_projection_preserves_the_norm_of_z(variant):
    model = said(variant)
    projections = list(model.surgery_fastfood__default)
    assert len(projections) == len(model.surgery.adapters.default.intrinsic.tensor_names)
    ratios = []
    for name, projection in zip(model.surgery.adapters.default.intrinsic.tensor_names, projections):
        n = projection.out_features
        ratio = mean_squared_ratio(projection)
        # ‖Pz‖²/‖z‖² over N output coordinates: its spread falls like √(2/N); 1 ± 4·√(2/N), at least ± 0.1
        assert abs(ratio - 1.0) < max(0.1, 4 * math.sqrt(2.0 / n)), (name, n, ratio)
        ratios.append(ratio)
    assert abs(sum(ratios) / len(ratios) - 1.0) < 0.03


def test_without_the_scale_a_tensor_moves_sqrt_n_over_l_times_as_far():
    """What `unit_blocks` (our former projection) does, by the formula √(N/L): 27× on T5-base's embedding."""
    model = said("v1.0", projection_scale="unit_blocks")
    for projection in model.surgery_fastfood__default:
        expected = projection.out_features / projection.padded_size
        assert abs(mean_squared_ratio(projection) / expected - 1.0) < max(0.1, 4 * math.sqrt(2.0 / projection.out_features))
    embedding = 32128 * 768
    assert round(math.sqrt(embedding / 32768), 1) == 27.4  # T5-base, d' = 20,000: L = 32,768


@pytest.mark.parametrize("out_features", [100, 5_000, 300_000])
def test_fastfood_norm_preserving_for_small_and_stacked_tensors(out_features):
    projection = Fastfood(1000, out_features, seed=3, norm_preserving=True)  # L = 1024: 1 to 293 blocks
    assert abs(mean_squared_ratio(projection, draws=8) - 1.0) < max(0.05, 4 * math.sqrt(2.0 / out_features))


def effective_weights(model: nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    """Module name → the `weight` its forward sees, read by a pre-hook that runs after the method's."""
    seen: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())
    for name in names:
        modules[name].register_forward_pre_hook(lambda m, a, name=name: seen.__setitem__(name, m.weight.detach().clone()))
    return seen


@pytest.mark.parametrize("variant", ["v1.0", "v1.1"])
def test_output_layer_is_unchanged_after_a_training_step(variant, batch):
    model = said(variant).train()
    head_before = model.lm_head.weight.detach().clone()
    seen = effective_weights(model, ["lm_head", "encoder.embed_tokens", "decoder.embed_tokens"])
    with torch.no_grad():
        model(**batch)
    embedding_before = seen["encoder.embed_tokens"]
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):  # two steps: at z = 0 only z has a gradient, after one step λ has one too
        optimizer.zero_grad()
        model(**batch).loss.backward()
        optimizer.step()
    assert model.surgery.adapters.default.intrinsic.z.abs().sum() > 0
    with torch.no_grad():
        model(**batch)
    # The output layer computes with its pretrained weights, before and after training...
    assert torch.equal(seen["lm_head"], head_before) and torch.equal(model.lm_head.weight, head_before)
    # ...while the input embedding, tied to it in v1.0, has moved in the subspace.
    assert not torch.equal(seen["encoder.embed_tokens"], embedding_before)
    assert torch.equal(seen["decoder.embed_tokens"], seen["encoder.embed_tokens"])
    if variant == "v1.0":
        assert model.lm_head.weight is model.shared.weight  # still one parameter: the state dict is the base's


def test_training_the_output_layer_on_top_of_said_is_table_7s_variant(batch):
    model = tiny_model("v1.0")
    report = surgery.report(surgery.apply(model, {"method": "intrinsic_said", "options": {"dimension": DIMENSION},
                                   "train": ["output_layer"]}))
    assert report.groups == {"intrinsic subspace": DIMENSION, "output layer": 96 * 64}
    copy = model.surgery.adapters.default.base["shared-weight"]   # the tied matrix: the adapter's own copy trains
    assert copy.requires_grad and not model.lm_head.weight.requires_grad   # the base matrix is never written
    model(**batch).loss.backward()
    assert copy.grad is not None and copy.grad.abs().sum() > 0 and model.lm_head.weight.grad is None


def test_t5_base_keeps_the_papers_0009_percent_with_the_output_layer_frozen():
    """Table 1: d' = 20,000 of 222,903,552 (0.009 %). The tied output layer of T5 v1.0 is the embedding
    matrix: it stays one of the m = 257 tensors (for the input embedding), and the output layer's own
    module gets no substitution hook."""
    from conftest import t5_base_on_meta
    from methods.intrinsic_said import IntrinsicWeights

    model = t5_base_on_meta()
    report = surgery.report(surgery.apply(model, "intrinsic-said"))
    assert report.trainable == 20_000 and f"{report.percent:.3f}" == "0.009"
    names = model.surgery.adapters.default.intrinsic.tensor_names
    assert len(names) == 257 and "shared.weight" in names and "lm_head.weight" not in names
    hooked = {name for name, module in model.named_modules()
              if any(isinstance(getattr(h, "substitution", None), IntrinsicWeights)
                     for h in module._forward_pre_hooks.values())}
    assert "lm_head" not in hooked and {"encoder.embed_tokens", "decoder.embed_tokens"} <= hooked
