"""Trainable percentages on a T5-base config equal the paper's Table 1 (and the n-variants of its
Tables 1-2 / appendix) at the printed precision. Counts are checked against formulas written
here, independently of the code that builds the modules."""

from __future__ import annotations

import pytest

import surgery
from conftest import t5_base_on_meta, t5_base_plan

T5_BASE_PARAMETERS = 222_903_552
K, D, BLOCKS = 768, 24, 24          # hidden size, bottleneck (768 / 32), 12 encoder + 12 decoder blocks
LAYER_NORMS = 62 * K                # 2 per encoder block + 3 per decoder block + 2 final = 62 norms
DENSE_ADAPTER = 2 * K * D + D + K   # down k×d + bias d, up d×k + bias k


@pytest.fixture(scope="module")
def base_model():
    return t5_base_on_meta()


def test_t5_base_parameter_count(base_model):
    assert sum(p.numel() for p in base_model.parameters()) == T5_BASE_PARAMETERS


def percent(count: int) -> float:
    return 100 * count / T5_BASE_PARAMETERS


def lphm_adapter(n: int, rank: int = 1) -> int:
    return 2 * rank * (K + D) + D + K        # down and up: Σᵢ sᵢ tᵢᵀ factors, plus biases


def phm_adapter(n: int) -> int:
    return 2 * (K * D // n + n**3) + D + K   # each projection has its own rule of n³


CASES = [
    # recipe, options override, expected count (formula), printed % in the paper
    ("adapter", {}, 2 * BLOCKS * DENSE_ADAPTER + LAYER_NORMS, "0.832"),
    ("pfeiffer-adapter", {}, BLOCKS * DENSE_ADAPTER + LAYER_NORMS, "0.427"),
    ("adapterdrop", {}, 2 * (BLOCKS - 10) * DENSE_ADAPTER + LAYER_NORMS, "0.494"),
    ("adapter-lowrank", {}, 2 * BLOCKS * (2 * (K + D) + D + K) + LAYER_NORMS, "0.073"),
    ("phm-adapter", {}, 2 * BLOCKS * phm_adapter(12) + LAYER_NORMS, "0.179"),
    ("compacter", {}, 2 * BLOCKS * lphm_adapter(4) + 4**3 + LAYER_NORMS, "0.073"),
    ("compacter++", {}, BLOCKS * lphm_adapter(4) + 4**3 + LAYER_NORMS, "0.047"),
    # n = 12 variants printed in the paper's Table 2 (SuperGLUE)
    ("compacter", {"n": 12}, 2 * BLOCKS * lphm_adapter(12) + 12**3 + LAYER_NORMS, "0.073"),
    ("compacter++", {"n": 12}, BLOCKS * lphm_adapter(12) + 12**3 + LAYER_NORMS, "0.048"),
]


@pytest.mark.parametrize("name,overrides,expected,printed", CASES)
def test_trainable_percent_matches_table(base_model, name, overrides, expected, printed):
    recipe = surgery.load_recipe(name)
    recipe_dict = {**recipe.source, "options": {**recipe.options, **overrides}}
    plan = t5_base_plan(recipe_dict)
    assert plan.trainable_parameters == expected
    assert f"{percent(plan.trainable_parameters):.3f}" == printed
    assert plan.report.percent == pytest.approx(percent(expected))


@pytest.mark.parametrize("n", [4, 8, 12])
@pytest.mark.parametrize("name,adapters_per_block", [("compacter", 2), ("compacter++", 1), ("phm-adapter", 2)])
def test_hypercomplex_counts_for_each_n(base_model, name, adapters_per_block, n):
    recipe = surgery.load_recipe(name)
    plan = t5_base_plan({**recipe.source, "options": {**recipe.options, "n": n}})
    adapters = adapters_per_block * BLOCKS
    if name == "phm-adapter":
        expected = adapters * phm_adapter(n)
    else:
        expected = adapters * lphm_adapter(n) + n**3  # 4L(k+d) + n³ for Compacter (+ biases)
    assert plan.trainable_parameters == expected + LAYER_NORMS


def test_full_finetuning_trains_everything(base_model):
    plan = t5_base_plan("full-finetune")
    assert plan.trainable_parameters == T5_BASE_PARAMETERS
    assert plan.report.percent == pytest.approx(100.0)


@pytest.mark.parametrize("name", ["adapter", "adapter-lowrank", "phm-adapter", "compacter", "compacter++"])
def test_report_closed_forms_add_up_to_the_measured_groups(base_model, name):
    plan = t5_base_plan(name)
    closed = {label: value for label, _, value in plan.closed_form}
    inserted = sum(v for label, v in closed.items() if "shared" not in label)
    assert inserted + closed.get("shared rule {Aᵢ}", 0) == plan.groups["inserted modules"] + plan.groups.get("shared", 0)
    assert plan.groups["layer norms"] == LAYER_NORMS
    text = str(plan.report)
    assert "closed forms" in text and "adapter biases" in text


def test_compacter_report_shows_the_paper_formula(base_model):
    plan = t5_base_plan("compacter")
    closed = {label: (formula, value) for label, formula, value in plan.closed_form}
    assert closed["LPHM factors sᵢ, tᵢ"][1] == 4 * BLOCKS * (K + D)      # 4L(k+d), L = 24 blocks
    assert closed["shared rule {Aᵢ}"] == ("n³; n=4", 64)
    assert plan.groups["shared"] == 64
