"""Bad recipes fail at plan time with a message naming the key, the value and what is valid,
and the model is left exactly as it was."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import surgery
from conftest import tiny_model
from surgery import RecipeError, SurgeryError, TraceError


def _state(model):
    return {n: p.detach().clone() for n, p in model.state_dict().items()}


def assert_unchanged(model, before):
    after = model.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[n], before[n]) for n in before)
    assert not hasattr(model, "surgery")
    assert all(type(b).__name__ == "T5Block" for b in model.encoder.block)


CASES = [
    ({"method": "adaptor", "sites": ["after_ffn"]}, "recipe key 'method': 'adaptor'", "did you mean 'adapter'?"),
    ({"method": "adapter", "sites": ["after_fnn"]}, "recipe key 'sites': 'after_fnn'", "did you mean 'after_ffn'?"),
    ({"method": "adapter", "site": ["after_ffn"]}, "recipe key 'site'", "did you mean 'sites'?"),
    ({"method": "adapter", "sites": ["after_ffn"], "options": {"reducton_factor": 8}}, "'options.reducton_factor'", "did you mean 'reduction_factor'?"),
    ({"method": "adapter", "sites": ["after_ffn"], "layers": {"encoder": [0, 7]}}, "recipe key 'layers.encoder': 7 is out of range", "indices 0..1"),
    ({"method": "adapter", "sites": ["after_ffn"], "layers": {"decoder": {"skip_first": 5}}}, "'layers.decoder.skip_first': 5", "at most 2"),
    ({"method": "adapter", "sites": ["after_ffn"], "layers": {"middle": "all"}}, "'layers': 'middle' is not a stack", "encoder, decoder"),
    ({"method": "adapter", "sites": ["after_ffn"], "options": {"bottleneck": 0}}, "'options.bottleneck': 0", "positive integer"),
    ({"method": "adapter", "sites": ["after_ffn"], "options": {"bottleneck": -3}}, "'options.bottleneck': -3", "positive integer"),
    ({"method": "adapter", "sites": ["after_ffn"], "options": {"reduction_factor": 0}}, "'options.reduction_factor': 0", "positive integer"),
    ({"method": "adapter", "sites": ["after_ffn"], "options": {"projection": "lowrank", "rank": 0}}, "'options.rank': 0", "≥ 1"),
    ({"method": "adapter", "sites": ["after_ffn"], "options": {"projection": "phm", "n": 3}}, "'options.n': 3 does not divide the hidden size 64", "valid: 1, 2"),
    ({"method": "adapter", "sites": ["after_ffn"], "options": {"projection": "phm", "n": 4}}, "'options.n': 4 does not divide the bottleneck 2", "valid: 1, 2"),
    ({"method": "adapter", "sites": ["after_ffn"], "options": {"projection": "sparse"}}, "'options.projection': 'sparse'", "dense, lowrank, phm"),
    ({"method": "adapter", "sites": ["after_ffn"], "options": {"shared_rule": "yes"}}, "'options.shared_rule': 'yes'", "true or false"),
    ({"method": "adapter", "sites": ["after_ffn"], "train": ["layernorms"]}, "recipe key 'train': 'layernorms'", "did you mean 'layer_norms'?"),
    ({"method": "adapter", "sites": []}, "recipe key 'sites': []", "after_self_attention"),
    ({"method": "full", "sites": ["after_ffn"]}, "recipe key 'sites'", "inserts nothing"),
    ({"method": "adapter", "sites": ["after_cross_attention"], "layers": {"decoder": "none"}}, "'sites': 'after_cross_attention' is offered by none", ""),
    ("no-such-recipe", "recipe key 'recipe': 'no-such-recipe'", "compacter++"),
]


@pytest.mark.parametrize("recipe,message,hint", CASES)
def test_bad_recipe_is_refused_at_plan_time(recipe, message, hint):
    model = tiny_model()
    before = _state(model)
    with pytest.raises(RecipeError) as caught:
        surgery.plan(model, recipe)
    assert message in str(caught.value)
    assert hint in str(caught.value)
    with pytest.raises(RecipeError):
        surgery.apply(model, recipe)
    assert_unchanged(model, before)


def test_invalid_yaml_file_is_named(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("method: adapter\nsites: [after_ffn\n")
    with pytest.raises(RecipeError, match="broken.yaml.*not valid YAML"):
        surgery.plan(tiny_model(), str(path))


def test_recipe_from_path_and_bundled_name_with_suffix(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("method: adapter\nsites: [after_ffn]\noptions: {bottleneck: 4}\n")
    assert surgery.plan(tiny_model(), str(path)).recipe.name == "mine"
    assert surgery.plan(tiny_model(), "pfeiffer-adapter.yaml").recipe.name == "pfeiffer-adapter"


def test_surgery_twice_is_refused_and_changes_nothing():
    model = tiny_model()
    surgery.apply(model, "adapter")
    before = _state(model)
    with pytest.raises(SurgeryError, match="already applied.*'adapter'"):
        surgery.apply(model, "pfeiffer-adapter")
    after = model.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[n], before[n]) for n in before)


class ValueDependentNorm(nn.Module):
    """Branches on tensor values: torch.fx cannot trace it."""

    def __init__(self, norm):
        super().__init__()
        self.norm = norm

    def forward(self, x):
        if x.sum() > 0:
            return self.norm(x)
        return -self.norm(x)


def test_untraceable_block_is_named_with_the_reason():
    model = tiny_model()
    model.decoder.block[1].layer[0].layer_norm = ValueDependentNorm(model.decoder.block[1].layer[0].layer_norm)
    before = _state(model)
    with pytest.raises(TraceError) as caught:
        surgery.plan(model, "adapter")
    message = str(caught.value)
    assert "decoder.block.1" in message and "cannot be traced" in message and "TraceError" in message
    assert_unchanged(model, before)


def test_unknown_model_family_is_refused():
    with pytest.raises(SurgeryError, match="no registered family"):
        surgery.plan(nn.Linear(2, 2), "adapter")


def test_plan_reads_but_does_not_touch():
    model = tiny_model()
    before = _state(model)
    plan = surgery.plan(model, "adapter")
    assert_unchanged(model, before)
    assert [(s.stack, s.layer, s.site) for s in plan.splices] == [
        (stack, layer, site) for stack in ("encoder", "decoder") for layer in (0, 1)
        for site in ("after_self_attention", "after_ffn")
    ]
    graph = plan.to_networkx()
    assert graph.has_edge("encoder.block.0:after_ffn", "encoder.block.0.spliced.default.after_ffn")
    assert "trainable" in plan.summary()


def test_list_sites_discovers_sites_from_dataflow():
    sites = surgery.list_sites(tiny_model("v1.1"))
    assert sites["encoder.block.0"] == ["after_self_attention", "after_ffn"]
    assert sites["decoder.block.1"] == ["after_self_attention", "after_cross_attention", "after_ffn"]


def test_sites_do_not_depend_on_attribute_names():
    """Rename the sublayer attributes: dataflow still finds the same sites."""
    model = tiny_model()
    for block in model.decoder.block:
        attention = block.layer[1]
        attention.add_module("renamed_attention", attention.EncDecAttention)
        del attention.EncDecAttention
        attention.__class__ = type("RenamedCross", (type(attention),), {
            "forward": lambda self, hidden_states, key_value_states, attention_mask=None, position_bias=None, past_key_values=None, **kw:
            _renamed_forward(self, hidden_states, key_value_states, attention_mask, position_bias, past_key_values)})
    copy_ = copy.deepcopy(model)
    assert surgery.list_sites(copy_)["decoder.block.0"] == ["after_self_attention", "after_cross_attention", "after_ffn"]


def _renamed_forward(self, hidden_states, key_value_states, attention_mask, position_bias, past_key_values):
    normed = self.layer_norm(hidden_states)
    output = self.renamed_attention(normed, mask=attention_mask, key_value_states=key_value_states,
                                    position_bias=position_bias, past_key_values=past_key_values)
    return (hidden_states + self.dropout(output[0]),) + output[1:]
