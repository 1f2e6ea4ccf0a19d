"""The output-layer variant (paper Table 7): `train: [..., output_layer]` for every method.

T5-base's output layer is tied to the embedding (T5 v1.0): training it adds the one V × d_model
matrix, 24,674,304 numbers. Table 7 prints the shares at two decimals; ours are within 0.015 of each
(the paper's rounding is not consistent with one denominator: 11.90 would round our Adapter share).
"""

from __future__ import annotations

import pytest
import torch

import surgery
from conftest import t5_base_on_meta, t5_base_plan, tiny_model

V, K, T5_BASE = 32128, 768, 222_903_552
TABLE_7 = {"adapter": 11.89, "pfeiffer-adapter": 11.49, "adapterdrop": 11.56, "adapter-lowrank": 11.13,
           "bitfit": 11.19, "phm-adapter": 11.24, "compacter": 11.13, "compacter++": 11.11}


def with_output_layer(name: str) -> dict:
    source = surgery.load_recipe(name).source
    return {**source, "train": list(source.get("train") or []) + ["output_layer"]}


@pytest.fixture(scope="module")
def base():
    return t5_base_on_meta()


@pytest.mark.parametrize("name, printed", TABLE_7.items())
def test_table_7_counts_are_table_1_plus_the_tied_output_layer(base, name, printed):
    plain = t5_base_plan(name).trainable_parameters          # the Table 1 plan test_table1_counts also reads
    variant = t5_base_plan(with_output_layer(name))
    assert variant.trainable_parameters == plain + V * K
    assert variant.groups["output layer"] == V * K
    assert abs(100 * variant.trainable_parameters / T5_BASE - printed) < 0.015


@pytest.mark.parametrize("variant", ["v1.0", "v1.1"])
@pytest.mark.parametrize("recipe, options", [
    ("bitfit", {}), ("prompt-tuning-r", {"length": 4}), ("intrinsic-said", {"dimension": 300}), ("adapter", {}),
])
def test_every_method_trains_the_output_layer_when_asked(recipe, options, variant, batch):
    model = tiny_model(variant).train()
    source = with_output_layer(recipe)
    surgery.apply(model, {**source, "options": {**(source.get("options") or {}), **options}})
    head = model.lm_head.weight
    tied = head is model.shared.weight
    assert tied == (variant == "v1.0")  # tied: the embedding matrix is the output layer, and trains as one
    copies = model.surgery.adapters.default.base          # the adapter trains its own copy; the base never moves
    copy = copies["shared-weight" if tied else "lm_head-weight"]
    assert copy.requires_grad and not head.requires_grad and torch.equal(copy, head)
    before, copy_before = head.detach().clone(), copy.detach().clone()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model(**batch).loss.backward()
    optimizer.step()
    assert not torch.equal(copy, copy_before) and torch.equal(head, before)
    if not tied:
        assert not model.shared.weight.requires_grad and "shared-weight" not in copies  # an untied embedding stays frozen


def test_full_finetuning_already_trains_it(base):
    assert surgery.plan(base, with_output_layer("full-finetune")).trainable_parameters == T5_BASE
