"""Property tests of the parameter-count formulas over random small configs and layer selections.

Dense adapter: 2L(2kd) + L(k + d)·... precisely, per inserted adapter 2kd weights + d + k biases,
with L the number of (block, site) pairs a recipe selects. Compacter: 4L(k+d) + n³ (+ biases) for
2 sites per block; PHM-Adapter: 4L(kd/n + n³) (+ biases). Layer norms are left out here (train: [])
so the formulas are the whole count.
"""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import T5Config, T5ForConditionalGeneration

import surgery

SITES = ["after_self_attention", "after_cross_attention", "after_ffn"]


@st.composite
def model_and_selection(draw, n_divides: bool = False):
    n = draw(st.sampled_from([1, 2, 4])) if n_divides else 1
    d = draw(st.integers(1, 4)) * n
    k = d * draw(st.integers(1, 4)) * (2 if draw(st.booleans()) else 1)
    encoder_depth, decoder_depth = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    config = T5Config(vocab_size=16, d_model=k, d_kv=4, d_ff=8, num_heads=2, num_layers=encoder_depth,
                      num_decoder_layers=decoder_depth, feed_forward_proj=draw(st.sampled_from(["relu", "gated-gelu"])))
    encoder_layers = sorted(draw(st.sets(st.integers(0, encoder_depth - 1), min_size=1)))
    decoder_layers = sorted(draw(st.sets(st.integers(0, decoder_depth - 1), min_size=1)))
    sites = draw(st.lists(st.sampled_from(SITES), min_size=1, max_size=3, unique=True))
    if sites == ["after_cross_attention"]:
        sites = ["after_cross_attention", "after_ffn"]
    return config, k, d, n, {"encoder": encoder_layers, "decoder": decoder_layers}, sites


def _inserted_count(config, recipe) -> int:
    with torch.device("meta"):
        model = T5ForConditionalGeneration(config)
    model.tie_weights()  # transformers 5.0 does not tie on the meta device
    return surgery.plan(model, recipe).trainable_parameters


def _site_count(layers: dict[str, list[int]], sites: list[str]) -> int:
    per_encoder_block = sum(s != "after_cross_attention" for s in sites)  # encoder blocks have no cross-attention
    return len(layers["encoder"]) * per_encoder_block + len(layers["decoder"]) * len(sites)


@settings(max_examples=25, deadline=None)
@given(model_and_selection())
def test_dense_adapter_count(case):
    config, k, d, _, layers, sites = case
    recipe = {"method": "adapter", "options": {"bottleneck": d}, "sites": sites, "layers": layers}
    L = _site_count(layers, sites)
    assert _inserted_count(config, recipe) == L * (2 * k * d) + L * (d + k)


@settings(max_examples=25, deadline=None)
@given(model_and_selection(n_divides=True), st.integers(1, 2))
def test_compacter_count_shares_the_rule_once(case, rank):
    config, k, d, n, layers, sites = case
    recipe = {"method": "adapter", "sites": sites, "layers": layers,
              "options": {"bottleneck": d, "projection": "phm", "n": n, "factorized": True, "shared_rule": True, "rank": rank}}
    L = _site_count(layers, sites)
    # 2 LPHM layers per adapter, each Σᵢ sᵢ (k/n × r) + tᵢ (r × d/n) = r(k + d); one rule of n³.
    assert _inserted_count(config, recipe) == L * 2 * rank * (k + d) + n**3 + L * (d + k)


@settings(max_examples=25, deadline=None)
@given(model_and_selection(n_divides=True))
def test_phm_adapter_count(case):
    config, k, d, n, layers, sites = case
    recipe = {"method": "adapter", "sites": sites, "layers": layers,
              "options": {"bottleneck": d, "projection": "phm", "n": n, "factorized": False, "shared_rule": False}}
    L = _site_count(layers, sites)
    assert _inserted_count(config, recipe) == L * 2 * (k * d // n + n**3) + L * (d + k)
