"""With inserted modules made the identity, the rewritten model computes what the original did."""

from __future__ import annotations

import pytest
import torch

import surgery
from conftest import zero_up_projections

SITE_RECIPES = ["adapter", "pfeiffer-adapter", "adapterdrop", "adapter-lowrank", "phm-adapter", "compacter", "compacter++"]


def _recipe_for_tiny(name: str):
    recipe = surgery.load_recipe(name)
    options = dict(recipe.options)
    if options.get("projection") == "phm":
        options["n"] = 2  # tiny models: d = 64 / 32 = 2, so n must divide 2
    layers = recipe.layers
    if name == "adapterdrop":
        layers = {"encoder": {"skip_first": 1}, "decoder": {"skip_first": 1}}
    return {**recipe.source, "options": options, "layers": layers}


@pytest.mark.parametrize("name", SITE_RECIPES)
def test_identity_modules_preserve_logits_and_generation(model_pair, batch, name):
    base, model = model_pair
    surgery.apply(model, _recipe_for_tiny(name))
    zero_up_projections(model)
    with torch.no_grad():
        expected = base(**batch).logits
        actual = model(**batch).logits
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6)
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    for options in ({"num_beams": 1}, {"num_beams": 3}):
        expected_tokens = base.generate(**inputs, max_new_tokens=6, do_sample=False, **options)
        actual_tokens = model.generate(**inputs, max_new_tokens=6, do_sample=False, **options)
        assert torch.equal(actual_tokens, expected_tokens)


def test_nonzero_adapters_change_the_output(model_pair, batch):
    """The check above could pass if modules were never called; here they must matter."""
    base, model = model_pair
    surgery.apply(model, "adapter")
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".spliced." in name:
                parameter.normal_(std=0.5)
        assert not torch.allclose(model(**batch).logits, base(**batch).logits, atol=1e-3)


def test_hidden_states_attentions_and_return_dict_survive(model_pair, batch):
    base, model = model_pair
    surgery.apply(model, _recipe_for_tiny("compacter"))
    zero_up_projections(model)
    with torch.no_grad():
        expected = base(**batch, output_hidden_states=True, output_attentions=True)
        actual = model(**batch, output_hidden_states=True, output_attentions=True)
        as_tuple = model(**batch, return_dict=False)
    for field in ("encoder_hidden_states", "decoder_hidden_states", "encoder_attentions", "decoder_attentions", "cross_attentions"):
        got, want = getattr(actual, field), getattr(expected, field)
        assert got is not None and len(got) == len(want), field
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert isinstance(as_tuple, tuple)
    torch.testing.assert_close(as_tuple[1], expected.logits, rtol=0, atol=1e-6)


def test_train_mode_with_dropout_matches_reference_under_same_seed(variant, batch):
    from conftest import tiny_model

    base = tiny_model(variant, dropout_rate=0.2).train()
    model = tiny_model(variant, dropout_rate=0.2).train()
    surgery.apply(model, _recipe_for_tiny("adapter"))
    zero_up_projections(model)
    torch.manual_seed(5)
    expected = base(**batch).loss
    torch.manual_seed(5)
    actual = model(**batch).loss
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_dtype_change_after_surgery_retraces(model_pair, batch, dtype):
    base, model = model_pair
    surgery.apply(model, "adapter")
    zero_up_projections(model)
    base.to(dtype)
    model.to(dtype)
    with torch.no_grad():
        expected = base(**batch).logits
        actual = model(**batch).logits
    assert actual.dtype == dtype
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)
    block = model.encoder.block[0]
    assert block._surgery_dtype == dtype
    # T5 clamps fp16 activations; that branch must be in the fp16 graph and only there.
    assert ("clamp" in block.surgery_graph_code()) == (dtype == torch.float16)
