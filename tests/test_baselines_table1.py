"""Paper Table 1 (and Table 2's "#Total params" column) for BitFit, prompt tuning and Intrinsic-SAID,
from plans on T5-base's architecture built on the meta device; expected counts come from formulas here.

Table 6 (Intrinsic-SAID for several d') is in the paper's appendix, which our copy of the paper
(/work/shared/paper/compacter.md) does not contain; for it we check that exactly d' numbers train
and the percentage d' / 222,903,552 at 4 decimals (the precision at which the five values differ).
"""

from __future__ import annotations

import pytest
import torch

import surgery
from conftest import t5_base_on_meta

# T5-base: k = d_model, heads·d_kv = inner, FFN f, vocabulary V, 12 blocks per stack, 32 buckets.
K, INNER, F, V, LAYERS, HEADS, BUCKETS = 768, 12 * 64, 3072, 32128, 12, 12, 32


def t5_base_parameters() -> int:
    attention = 3 * K * INNER + INNER * K
    encoder_block = attention + 2 * K * F + 2 * K
    decoder_block = 2 * attention + 2 * K * F + 3 * K
    stacks = LAYERS * (encoder_block + decoder_block) + 2 * HEADS * BUCKETS + 2 * K  # + relative biases, final norms
    return V * K + stacks  # one embedding, tied to the output layer


def bitfit_biases() -> int:
    attention = 3 * INNER + K  # q, k, v have heads·d_kv outputs; o has k
    encoder_block = attention + F + K + 2 * K  # + wi, wo, two layer norms
    decoder_block = 2 * attention + F + K + 3 * K
    return LAYERS * (encoder_block + decoder_block) + V  # + output layer


def t5_base_tensors() -> int:
    # encoder block: q,k,v,o + wi,wo + 2 norms = 8; decoder block: 2×4 + 2 + 3 norms = 13;
    # per stack one relative-attention-bias table and one final norm; one shared embedding.
    return 1 + (LAYERS * 8 + 2) + (LAYERS * 13 + 2)


@pytest.fixture(scope="module")
def base():
    return t5_base_on_meta()


def percent(trainable: int) -> float:
    return 100.0 * trainable / t5_base_parameters()


def test_t5_base_has_222_903_552_parameters(base):
    assert t5_base_parameters() == 222_903_552
    assert sum(p.numel() for p in base.parameters()) == 222_903_552
    assert len(list(base.parameters())) == t5_base_tensors() == 257


@pytest.mark.parametrize("recipe, expected, table1, glue_total, superglue_total", [
    ("bitfit", bitfit_biases(), "0.126", "1.010", "1.008"),
    ("prompt-tuning-r", 100 * K, "0.034", "1.003", "1.002"),
    ("prompt-tuning-t", 100 * K, "0.034", "1.003", "1.002"),
    ("intrinsic-said", 20_000, "0.009", "1.001", "1.001"),
])
def test_trainable_share_matches_the_paper(base, recipe, expected, table1, glue_total, superglue_total):
    plan = surgery.plan(base, recipe)
    assert plan.trainable_parameters == expected
    assert plan.base_parameters == 222_903_552
    assert f"{percent(plan.trainable_parameters):.3f}" == table1
    assert f"{plan.report.percent:.3f}" == table1
    # "#Total params": one base model plus one set of trained parameters per task (8 GLUE, 6 SuperGLUE tasks).
    assert f"{1 + 8 * plan.trainable_parameters / plan.base_parameters:.3f}" == glue_total
    assert f"{1 + 6 * plan.trainable_parameters / plan.base_parameters:.3f}" == superglue_total
    assert not any(p.requires_grad is False for p in base.parameters())  # planning left the model alone
    assert not hasattr(base, "surgery")


def test_bitfit_and_prompt_counts_by_formula():
    assert bitfit_biases() == 280_960
    assert 100 * K == 76_800


@pytest.mark.parametrize("dimension, printed", [
    (400, "0.0002"), (1_400, "0.0006"), (2_500, "0.0011"), (10_000, "0.0045"), (20_000, "0.0090"),
])
def test_intrinsic_said_table6_dimensions(base, dimension, printed):
    plan = surgery.plan(base, {**surgery.load_recipe("intrinsic-said").source, "options": {"dimension": dimension}})
    assert plan.trainable_parameters == dimension
    assert plan.groups == {"intrinsic subspace": dimension}
    assert f"{percent(dimension):.4f}" == f"{plan.report.percent:.4f}" == printed


def test_intrinsic_said_counts_every_parameter_tensor_of_t5_base(base):
    m = t5_base_tensors()
    with pytest.raises(surgery.RecipeError, match=rf"\({m}\) \+ 1"):
        surgery.plan(base, {"method": "intrinsic_said", "options": {"dimension": m}})
    assert surgery.plan(base, {"method": "intrinsic_said", "options": {"dimension": m + 1}}).trainable_parameters == m + 1


def test_plans_on_meta_allocate_nothing(base):
    plan = surgery.plan(base, "intrinsic-said")
    assert all(p.device == torch.device("meta") for p in base.parameters())
    assert plan.added_parameters == 20_000
