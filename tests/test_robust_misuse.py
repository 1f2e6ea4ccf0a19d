"""Misuse gets a one-line SurgeryError naming what is wrong and what is valid, the model untouched.

Non-finite outputs at initialisation, a hand-made Recipe with options=None, set_active(None), full
fine-tuning as a named adapter, from_pretrained of a damaged model folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import surgery
from conftest import tiny_model
from surgery import CheckpointError, RecipeError, SurgeryError

IDS = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 1]])
LPHM = {"method": "adapter", "sites": ["after_ffn"],
        "options": {"projection": "phm", "n": 2, "factorized": True, "shared_rule": True, "bottleneck": 8}}


def state_of(model: torch.nn.Module) -> tuple:
    return ({n: t.clone() for n, t in model.state_dict().items()}, [type(m) for m in model.modules()],
            {n: p.requires_grad for n, p in model.named_parameters()})


def assert_untouched(model: torch.nn.Module, before: tuple) -> None:
    values, classes, flags = state_of(model)
    assert values.keys() == before[0].keys() and all(torch.equal(values[n], before[0][n]) for n in values)
    assert classes == before[1] and flags == before[2]


@pytest.mark.parametrize("recipe, option", [
    ({**LPHM, "options": {**LPHM["options"], "factor_init_gain": 1e12}}, "factor_init_gain"),
    ({"method": "adapter", "sites": ["after_ffn"], "options": {"projection": "lowrank", "bottleneck": 8,
                                                               "factor_init_gain": 1e12}}, "factor_init_gain"),
    ({"method": "adapter", "sites": ["after_self_attention"], "options": {"dense_init_std": 1e25}}, "dense_init_std"),
], ids=["lphm-gain", "lowrank-gain", "dense-std"])
def test_non_finite_outputs_at_init_are_refused(recipe, option):
    model = tiny_model()
    with torch.no_grad():
        assert torch.isfinite(model(input_ids=IDS, decoder_input_ids=IDS).logits).all()   # the base is fine
    before = state_of(model)
    with pytest.raises(RecipeError, match=f"recipe key 'options': {{'{option}': .*non-finite .* at initialisation"):
        surgery.apply(model, recipe)
    assert_untouched(model, before)
    assert not hasattr(model, "surgery")


def test_the_paper_initialisation_passes_and_its_outputs_are_finite():
    model = tiny_model()
    surgery.apply(model, LPHM)
    with torch.no_grad():
        assert torch.isfinite(model(input_ids=IDS, decoder_input_ids=IDS).logits).all()


def test_a_second_adapter_blowing_up_leaves_the_first():
    model = tiny_model()
    surgery.apply(model, LPHM)
    before = state_of(model)
    with pytest.raises(RecipeError, match="non-finite"):
        surgery.apply(model, {**LPHM, "options": {**LPHM["options"], "factor_init_gain": 1e12}}, name="big")
    assert_untouched(model, before)
    assert surgery.list_adapters(model) == ["default"]


def test_the_probe_keeps_train_mode_and_draws_no_random_numbers():
    from surgery.init_check import finite_outputs

    model = tiny_model().train()
    model.encoder.eval()
    modes = [m.training for m in model.modules()]
    rng = torch.get_rng_state()
    assert finite_outputs(model) is True
    assert [m.training for m in model.modules()] == modes and torch.equal(torch.get_rng_state(), rng)


@pytest.mark.parametrize("field, value", [("options", None), ("sites", None), ("train", "layer_norms")])
def test_a_hand_made_recipe_with_a_field_of_the_wrong_type(field, value):
    model = tiny_model()
    recipe = surgery.Recipe(**{"name": "x", "method": "adapter", "sites": ("after_ffn",), field: value})
    with pytest.raises(RecipeError, match=f"recipe key '{field}': {value!r} is not valid; valid: "):
        surgery.apply(model, recipe)
    assert not hasattr(model, "surgery")


@pytest.mark.parametrize("names", [None, 3, [None], {"default": 1}])
def test_set_active_with_something_else_than_names(names):
    model = tiny_model()
    surgery.apply(model, LPHM)
    with pytest.raises(SurgeryError, match=r"set_active\(names=.*\): expected an adapter name or a list of them "
                                           r"\(the model's adapters: default"):
        surgery.set_active(model, names)
    assert surgery.active_adapters(model) == ["default"]


def test_full_fine_tuning_cannot_be_a_named_adapter(tmp_path):
    model = tiny_model()
    with pytest.raises(RecipeError, match="'full-finetune' cannot be a named adapter: it trains the base weights themselves"):
        surgery.apply(model, "full-finetune", name="x")
    assert not hasattr(model, "surgery")
    with pytest.raises(RecipeError, match="recipe key 'train': 'all' cannot be a named adapter"):
        surgery.plan(model, {**LPHM, "train": ["all"]}, name="x")
    with pytest.raises(RecipeError, match="cannot be a named adapter"):
        surgery.check_can_be_named("full-finetune")            # what a runner calls before training
    surgery.check_can_be_named("compacter++")
    surgery.apply(model, "full-finetune")                      # unnamed it is fine, and saves and loads
    folder = surgery.save_adapter(model, tmp_path / "ft")
    with pytest.raises(CheckpointError, match="no adapter named 'x'"):
        surgery.save_adapter(model, tmp_path / "ft2", name="x")
    fresh = tiny_model()
    with pytest.raises(CheckpointError, match="cannot be a named adapter"):
        surgery.load_adapter(fresh, folder, name="x")
    assert not hasattr(fresh, "surgery")
    surgery.load_adapter(fresh, folder)
    assert surgery.list_adapters(fresh) == ["default"]


@pytest.fixture
def model_folder(tmp_path) -> Path:
    model = tiny_model()
    surgery.apply(model, LPHM)
    surgery.save_pretrained(model, tmp_path / "model")   # the model and the adapter files beside it
    return tmp_path / "model"


def test_from_pretrained_of_a_truncated_model_file(model_folder):
    data = (model_folder / "model.safetensors").read_bytes()
    (model_folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=f"cannot load the model from {model_folder / 'model.safetensors'}: "
                                              "SafetensorError"):
        surgery.from_pretrained(model_folder)


def test_from_pretrained_without_the_model_file(model_folder):
    (model_folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=f"cannot load the model from {model_folder}: OSError"):
        surgery.from_pretrained(model_folder)


def test_from_pretrained_with_the_config_of_another_model_type(model_folder):
    config = json.loads((model_folder / "config.json").read_text())
    (model_folder / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))
    with pytest.raises(CheckpointError, match=r"config\.json: model_type 'bert', but the adapter beside it was saved "
                                              "from a 't5' model"):
        surgery.from_pretrained(model_folder)
    (model_folder / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config\.json is not a readable JSON model config"):
        surgery.from_pretrained(model_folder)
