"""Freezing follows the plan: gradients reach exactly the trainable set, and one step moves only it."""

from __future__ import annotations

import pytest
import torch

import surgery
from conftest import tiny_model

RECIPES = {
    "adapter": {},
    "compacter": {"n": 2},
    "phm-adapter": {"n": 2},
    "adapter-lowrank": {"rank": 2},
}


@pytest.mark.parametrize("name", list(RECIPES))
def test_one_step_changes_exactly_the_trainable_parameters(variant, batch, name):
    model = tiny_model(variant).train()
    recipe = surgery.load_recipe(name)
    report = surgery.report(surgery.apply(model, {**recipe.source, "options": {**recipe.options, **RECIPES[name]}}))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert report.trainable == sum(p.numel() for n, p in model.named_parameters() if n in trainable)
    # Expected trainable set, derived from names alone: inserted modules, the shared rule, and the
    # adapter's own copy of every base layer norm (the base layer norms themselves stay frozen).
    base_norms = {n for n, _ in model.named_parameters() if "layer_norm" in n and not n.startswith("surgery.")}
    copies = {"surgery.adapters.default.base." + n.replace(".", "-") for n in base_norms}
    expected = {n for n, _ in model.named_parameters()
                if ".spliced.default." in n or n.startswith("surgery.adapters.default.shared")} | copies
    assert base_norms and trainable == expected

    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model(**batch).loss.backward()
    for n, p in model.named_parameters():
        assert (p.grad is not None) == (n in trainable), n
    optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == trainable


def test_shared_rule_is_one_tensor_used_everywhere(batch):
    model = tiny_model()
    surgery.apply(model, {**surgery.load_recipe("compacter").source, "options": {"projection": "phm", "factorized": True, "shared_rule": True, "n": 2}})
    rule = model.surgery.adapters.default.shared.weight
    users = [m for n, m in model.named_modules() if hasattr(m, "rule_module")]
    assert len(users) == 2 * 2 * (2 + 2)  # down + up, 2 sites, 4 blocks
    assert all(m.rule_module.weight is rule for m in users)
    names = [n for n, _ in model.named_parameters(remove_duplicate=False) if n.endswith("weight") and _ is rule]
    assert names == ["surgery.adapters.default.shared.weight"]  # registered (and so counted and saved) once
    model.to(torch.bfloat16)
    assert all(m.rule_module.weight is model.surgery.adapters.default.shared.weight for m in users)
    assert model.surgery.adapters.default.shared.weight.dtype == torch.bfloat16


def test_learn_rule_false_freezes_the_rule():
    model = tiny_model()
    report = surgery.report(surgery.apply(model, {"method": "adapter", "sites": ["after_ffn"], "train": ["layer_norms"],
                                   "options": {"projection": "phm", "factorized": True, "shared_rule": True, "n": 2, "learn_rule": False}}))
    assert not model.surgery.adapters.default.shared.weight.requires_grad
    assert "shared" not in report.groups


def test_full_finetuning_trains_everything(batch):
    model = tiny_model()
    report = surgery.report(surgery.apply(model, "full-finetune"))
    assert all(p.requires_grad for p in model.parameters())
    assert report.trainable == sum(p.numel() for p in model.parameters())


def test_gradient_checkpointing_still_works(batch):
    model = tiny_model().train()
    surgery.apply(model, "adapter")
    model.activation_checkpointing_enable() if hasattr(model, "activation_checkpointing_enable") else model.gradient_checkpointing_enable()
    model.config.use_cache = False
    loss = model(**batch).loss
    loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if ".spliced." in n]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
