"""Every initialisation of the bundled recipes against the distribution the authors' runs used.

Each expected distribution is written here from its formula (Glorot-uniform bound
gain·√(6/(fan_in + fan_out)) with the authors' gain √2, N(0, 0.01²), N(0, 1e-4²), U(−0.5, 0.5)) and
checked with a Kolmogorov–Smirnov test on the drawn values; where it matters, the same values are
shown to *reject* the distribution we used before (gain 1, N(0, 1e-4²) for PHM-Adapter's own
rule, N(0, 0.5²) for the prompt), so a test cannot pass on the wrong init.
"""

from __future__ import annotations

import math
from collections import defaultdict

import pytest
import torch
from scipy import stats

import surgery
from conftest import tiny_model

SQRT2 = math.sqrt(2.0)
ACCEPT = 1e-3   # seeded draws: p below this means the values do not follow the distribution
REJECT = 1e-6


def recipe(name: str, **options) -> dict:
    source = surgery.load_recipe(name).source
    return {**source, "options": {**(source.get("options") or {}), **options}}


def applied(name: str, seed: int = 0, d_model: int = 128, **options):
    model = tiny_model(seed=seed, d_model=d_model, d_kv=d_model // 4, d_ff=2 * d_model)
    torch.manual_seed(seed)
    surgery.apply(model, recipe(name, **options))
    return model


def inserted(model, suffix: str) -> list[torch.Tensor]:
    """The inserted modules' tensors whose name ends with `suffix`."""
    return [p.detach().double() for n, p in model.named_parameters() if ".spliced." in n and n.endswith(suffix)]


def glorot_bound(fan_in: int, fan_out: int, gain: float) -> float:
    return gain * math.sqrt(6.0 / (fan_in + fan_out))


def uniform_p(values: torch.Tensor, bound: float) -> float:
    return stats.kstest(values.flatten().numpy(), stats.uniform(loc=-bound, scale=2 * bound).cdf).pvalue


def normal_p(values: torch.Tensor, std: float) -> float:
    return stats.kstest(values.flatten().numpy(), stats.norm(loc=0.0, scale=std).cdf).pvalue


def by_matrix_shape(tensors: list[torch.Tensor]) -> dict[tuple[int, int], torch.Tensor]:
    """Values grouped by the (rows, cols) of the matrices they belong to (the fans of Glorot)."""
    groups: dict[tuple[int, int], list[torch.Tensor]] = defaultdict(list)
    for tensor in tensors:
        rows, cols = tensor.shape[-2:]
        groups[(rows, cols)].append(tensor.flatten())
    return {shape: torch.cat(values) for shape, values in groups.items()}


@pytest.mark.parametrize("name, suffixes", [
    ("compacter", (".s", ".t")),        # LPHM factors sᵢ (k/n × r), tᵢ (r × d/n)
    ("compacter++", (".s", ".t")),
    ("phm-adapter", (".B",)),           # PHM Bᵢ (k/n × d/n)
])
def test_hypercomplex_factors_are_glorot_uniform_with_gain_sqrt2(name, suffixes):
    model = applied(name, **({"n": 4, "reduction_factor": 8} if name == "phm-adapter" else {}))
    groups = by_matrix_shape([t for suffix in suffixes for t in inserted(model, suffix)])
    assert len(groups) >= 2  # down- and up-projections have different fans
    told_apart = 0
    for (rows, cols), values in groups.items():
        bound = glorot_bound(rows, cols, SQRT2)
        assert values.abs().max() <= bound
        assert uniform_p(values, bound) > ACCEPT, (rows, cols)
        if values.numel() >= 500:  # enough draws to tell the two bounds apart
            assert uniform_p(values, glorot_bound(rows, cols, 1.0)) < REJECT
            told_apart += 1
    assert told_apart >= 1


def test_low_rank_factors_are_glorot_uniform_with_gain_sqrt2():
    model = applied("adapter-lowrank")
    told_apart = 0
    for suffix in (".left", ".right"):  # U (in × r), V (out × r): fans (in, r) and (out, r)
        for (rows, cols), values in by_matrix_shape(inserted(model, suffix)).items():
            bound = glorot_bound(rows, cols, SQRT2)
            assert values.abs().max() <= bound
            assert uniform_p(values, bound) > ACCEPT
            if values.numel() >= 500:
                assert uniform_p(values, glorot_bound(rows, cols, 1.0)) < REJECT
                told_apart += 1
    assert told_apart >= 1


def test_gain_is_an_option():
    model = applied("compacter", factor_init_gain=1.0)
    for (rows, cols), values in by_matrix_shape(inserted(model, ".s")).items():
        assert uniform_p(values, glorot_bound(rows, cols, 1.0)) > ACCEPT


def test_phm_adapter_owns_rules_drawn_from_n_0_001():
    model = applied("phm-adapter", n=4, reduction_factor=8)
    values = torch.cat([t.flatten() for t in inserted(model, ".rule.weight")])
    assert values.numel() == 16 * 4**3  # 16 projections (2 per adapter, 8 adapters), n³ each
    assert normal_p(values, 0.01) > ACCEPT
    assert normal_p(values, 1e-4) < REJECT  # what the recipe used before


def test_an_own_rule_defaults_to_the_authors_001_and_a_shared_one_to_1e4():
    own = applied("phm-adapter", n=4, reduction_factor=8, rule_init_std=None)
    assert normal_p(torch.cat([t.flatten() for t in inserted(own, ".rule.weight")]), 0.01) > ACCEPT
    shared = applied("compacter", d_model=256, n=8, rule_init_std=None)  # bottleneck 8: n = 8 fits, 512 draws
    rule = shared.surgery.adapters.default.shared.weight.detach().double()
    assert normal_p(rule, 1e-4) > ACCEPT
    assert normal_p(rule, 0.01) < REJECT


def test_compacter_shared_rule_is_n_0_1e4():
    model = applied("compacter", d_model=256, n=8)
    assert normal_p(model.surgery.adapters.default.shared.weight.detach().double(), 1e-4) > ACCEPT


@pytest.mark.parametrize("name", ["adapter", "pfeiffer-adapter"])  # (adapterdrop: the same options, other layers)
def test_dense_adapter_weights_are_n_0_001_with_zero_bias(name):
    model = applied(name)
    weights = torch.cat([t.flatten() for t in inserted(model, ".weight")])
    assert normal_p(weights, 0.01) > ACCEPT
    assert all(torch.count_nonzero(b) == 0 for b in inserted(model, ".bias"))


def test_prompt_tuning_r_is_uniform_minus_half_to_half():
    model = tiny_model()
    surgery.apply(model, "prompt-tuning-r")
    values = model.surgery.adapters.default.prompt.weight.detach().double()
    assert values.numel() == 100 * 64 and values.abs().max() <= 0.5
    assert uniform_p(values, 0.5) > ACCEPT
    assert normal_p(values, 0.5) < REJECT  # what the recipe drew before
    # the moments of U(−a, a): mean 0, variance a²/3
    assert abs(values.mean().item()) < 4 * math.sqrt(0.25 / 3 / values.numel())
    assert abs(values.var().item() - 0.25 / 3) < 0.1 * 0.25 / 3


def test_prompt_random_normal_stays_available():
    model = tiny_model()
    surgery.apply(model, {"method": "prompt_tuning", "options": {"random_distribution": "normal", "init_std": 0.5}})
    assert normal_p(model.surgery.adapters.default.prompt.weight.detach().double(), 0.5) > ACCEPT


@pytest.mark.parametrize("options, key", [
    ({"factor_init_gain": 0.0}, "options.factor_init_gain"),
    ({"factor_init_gain": float("inf")}, "options.factor_init_gain"),
    ({"rule_init_std": -1.0}, "options.rule_init_std"),
])
def test_bad_init_options_fail_at_plan_time(options, key):
    with pytest.raises(surgery.RecipeError) as error:
        surgery.plan(tiny_model(d_model=128, d_kv=32), recipe("compacter", **options))
    assert error.value.key == key


def test_bad_prompt_range_fails_at_plan_time():
    with pytest.raises(surgery.RecipeError) as error:
        surgery.plan(tiny_model(), {"method": "prompt_tuning", "options": {"init_range": 0}})
    assert error.value.key == "options.init_range"
