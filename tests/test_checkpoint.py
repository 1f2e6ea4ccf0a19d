"""Adapter-only checkpoints: trained tensors only, shared ones once, refused on another base."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import surgery
from conftest import tiny_model
from surgery import CheckpointError
from surgery.checkpoint import CONFIG_FILE, WEIGHTS_FILE
from surgery.naming import canonical_name

COMPACTER_TINY = {**surgery.load_recipe("compacter").source, "options": {**surgery.load_recipe("compacter").options, "n": 2}}


def _train_a_little(model, batch, steps=3):
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        model(**batch).loss.backward()
        optimizer.step()
    return model.eval()


@pytest.mark.parametrize("recipe", ["adapter", "adapter-lowrank", COMPACTER_TINY])
def test_round_trip_gives_identical_outputs(variant, batch, tmp_path, recipe):
    model = tiny_model(variant, seed=3)
    surgery.apply(model, recipe)
    _train_a_little(model, batch)
    folder = surgery.save_adapter(model, tmp_path / "ckpt")

    fresh = tiny_model(variant, seed=3)  # the same base weights, no surgery yet
    report = surgery.load_adapter(fresh, folder)
    assert report.trainable == surgery.report(model).trainable
    with torch.no_grad():
        torch.testing.assert_close(fresh(**batch).logits, model(**batch).logits, rtol=0, atol=0)
    assert {n for n, p in fresh.named_parameters() if p.requires_grad} == {n for n, p in model.named_parameters() if p.requires_grad}


def test_checkpoint_holds_only_trained_tensors_and_the_shared_rule_once(batch, tmp_path):
    model = tiny_model()
    surgery.apply(model, COMPACTER_TINY)
    folder = surgery.save_adapter(model, tmp_path)
    tensors = load_file(folder / WEIGHTS_FILE)
    trained = {canonical_name(n, "default") for n, p in model.named_parameters() if p.requires_grad}
    assert set(tensors) == trained  # the file names the tensors without the adapter's name
    assert [n for n in tensors if tuple(tensors[n].shape) == (2, 2, 2)] == ["surgery.shared.weight"]
    config = json.loads((folder / CONFIG_FILE).read_text())
    assert config["recipe"]["name"] == "compacter" and config["base"]["d_model"] == 64


def test_shared_rule_stays_tied_after_loading(batch, tmp_path):
    model = tiny_model()
    surgery.apply(model, COMPACTER_TINY)
    _train_a_little(model, batch)
    fresh = tiny_model()
    surgery.load_adapter(fresh, surgery.save_adapter(model, tmp_path))
    rule = fresh.surgery.adapters.default.shared.weight
    torch.testing.assert_close(rule, model.surgery.adapters.default.shared.weight)
    assert all(m.rule_module.weight is rule for _, m in fresh.named_modules() if hasattr(m, "rule_module"))


def test_loading_into_another_base_fails_clearly_and_changes_nothing(tmp_path):
    model = tiny_model("v1.0")
    surgery.apply(model, "adapter")
    folder = surgery.save_adapter(model, tmp_path)
    other = tiny_model("v1.1")
    with pytest.raises(CheckpointError, match="another base model.*feed_forward_proj: checkpoint 'relu', model 'gated-gelu'"):
        surgery.load_adapter(other, folder)
    assert not hasattr(other, "surgery")
    wider = tiny_model(d_ff=256)
    with pytest.raises(CheckpointError, match="d_ff: checkpoint 128, model 256"):
        surgery.load_adapter(wider, folder)


def test_loading_a_different_recipe_into_a_spliced_model_fails(tmp_path):
    model = tiny_model()
    surgery.apply(model, "adapter")
    folder = surgery.save_adapter(model, tmp_path)
    other = tiny_model()
    surgery.apply(other, "pfeiffer-adapter")
    with pytest.raises(CheckpointError, match="holds recipe 'adapter'.*given recipe 'pfeiffer-adapter'"):
        surgery.load_adapter(other, folder)


def test_not_a_checkpoint_folder(tmp_path):
    with pytest.raises(CheckpointError, match="not an adapter checkpoint folder"):
        surgery.load_adapter(tiny_model(), tmp_path)


def test_save_pretrained_of_the_spliced_model_reloads_the_base(tmp_path, batch):
    from transformers import T5ForConditionalGeneration

    base = tiny_model()
    model = tiny_model()
    surgery.apply(model, "adapter")
    model.save_pretrained(tmp_path / "full")
    reloaded = T5ForConditionalGeneration.from_pretrained(tmp_path / "full", attn_implementation="eager").eval()
    assert all(torch.equal(reloaded.state_dict()[n], t) for n, t in base.state_dict().items())
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, base(**batch).logits, rtol=0, atol=0)
