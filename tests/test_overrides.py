"""Python habits: `model = surgery.apply(model, recipe)` returns the model; `overrides=` takes `--set`'s dotted keys."""

from __future__ import annotations

import pytest
import torch
import yaml

import surgery
from runners.finetune.overrides import Setting, parse_sets
from surgery.overrides import parse_value, with_overrides

from conftest import tiny_model as tiny_t5


def tiny_model():
    """d_model 128: compacter++'s bottleneck is 128/32 = 4, so its n = 4 fits (and n = 2)."""
    return tiny_t5(d_model=128)


def written_out(tmp_path, change: dict) -> str:
    """compacter++ as a YAML file with `change` written into its options by hand (no override code involved)."""
    mapping = surgery.load_recipe("compacter++").source
    mapping = {**mapping, "options": {**mapping["options"], **change}}
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(mapping))
    return str(path)


def state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}


# -- apply returns the model it changed in place ---------------------------------------------------

def test_apply_returns_the_same_model_changed_in_place_and_report_reads_it():
    model = tiny_model()
    returned = surgery.apply(model, "compacter++")
    assert returned is model
    report = surgery.report(model)
    assert report.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert report.recipe == "compacter++"
    # a further named adapter: apply returns the model again, and the report is the new adapter's
    assert surgery.apply(model, "bitfit", name="sst2") is model
    assert surgery.report(model).groups["biases"] == sum(p.numel() for n, p in model.named_parameters() if p.requires_grad
                                                          and "bias" in n)


def test_the_returned_model_trains_like_the_one_changed_in_place():
    model = surgery.apply(tiny_model(), "compacter++")
    trainable = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in trainable]
    ids = torch.tensor([[5, 6, 7, 1]])
    model.train()
    model(input_ids=ids, labels=ids).loss.backward()
    torch.optim.SGD(trainable, lr=0.1).step()
    assert any(not torch.equal(b, p) for b, p in zip(before, trainable))


# -- overrides= means what the edited file means -------------------------------------------------

@pytest.mark.parametrize("change", [{"n": 2}, {"reduction_factor": 16}, {"n": 2, "reduction_factor": 16}])
def test_overrides_plan_exactly_what_the_edited_file_plans(change, tmp_path):
    from_file = surgery.plan(tiny_model(), written_out(tmp_path, change))
    overridden = surgery.plan(tiny_model(), "compacter++", overrides={f"options.{k}": v for k, v in change.items()})
    assert overridden.groups == from_file.groups
    assert overridden.recipe.options == from_file.recipe.options
    assert [(s.stack, s.layer, s.site, s.parameters) for s in overridden.splices] == \
           [(s.stack, s.layer, s.site, s.parameters) for s in from_file.splices]


def test_override_n_changes_the_shared_rule_to_n_cubed_and_apply_takes_it_too():
    model = surgery.apply(tiny_model(), "compacter++", overrides={"options.n": 2})
    assert surgery.report(model).groups["shared"] == 2 ** 3  # one n×n×n rule for the whole model (paper §3.2)
    assert surgery.plan(tiny_model(), "compacter++").groups["shared"] == 4 ** 3  # the bundled n = 4


def test_override_layers_and_name():
    the_plan = surgery.plan(tiny_model(), "compacter++", overrides={"layers.encoder": "none", "name": "mine"})
    assert {s.stack for s in the_plan.splices} == {"decoder"}
    assert the_plan.recipe.name == "mine"


def test_overrides_leave_the_bundled_recipe_and_the_given_mapping_as_they_were():
    recipe = {"method": "adapter", "sites": ["after_ffn"], "options": {"reduction_factor": 32}}
    surgery.plan(tiny_model(), recipe, overrides={"options.reduction_factor": 16})
    assert recipe == {"method": "adapter", "sites": ["after_ffn"], "options": {"reduction_factor": 32}}
    assert surgery.load_recipe("compacter++").options["n"] == 4


def test_the_runners_set_and_the_library_write_the_same_recipe():
    source = surgery.load_recipe("compacter++").source
    for text in ["options.n=8", "layers.decoder.skip_first=1", "sites=[after_ffn, after_self_attention]"]:
        (override,) = parse_sets([text])
        key, value = text.split("=", 1)
        assert Setting((override,)).recipe_mapping(source) == with_overrides("compacter++", {key: parse_value(value)})


# -- errors: one line naming the key, the value and what is valid, the model untouched ------------

def test_a_bad_override_value_gets_the_edited_files_error_and_leaves_the_model_untouched(tmp_path):
    with pytest.raises(surgery.RecipeError) as from_file:
        surgery.plan(tiny_model(), written_out(tmp_path, {"n": 3}))
    model = tiny_model()
    before = state(model)
    with pytest.raises(surgery.RecipeError) as overridden:
        surgery.apply(model, "compacter++", overrides={"options.n": 3})
    assert str(overridden.value) == str(from_file.value)
    assert "'options.n': 3" in str(overridden.value) and "valid:" in str(overridden.value)
    assert not hasattr(model, "surgery") and before.keys() == model.state_dict().keys()
    assert all(torch.equal(before[n], t) for n, t in model.state_dict().items())


@pytest.mark.parametrize("overrides, words", [
    ({"option.n": 8}, ["'option'", "is not a recipe key", "did you mean 'options'"]),
    ({"options..n": 8}, ["'overrides'", "'options..n'", "not a dotted recipe key", "valid: name, description"]),
    ({"": 8}, ["'overrides'", "not a dotted recipe key"]),
    ({"options.m": 8}, ["'options.m'", "valid:"]),
    (["options.n", 8], ["'overrides'", "a mapping of dotted recipe keys"]),
])
def test_a_bad_override_key_is_named_with_what_is_valid(overrides, words):
    with pytest.raises(surgery.RecipeError) as error:
        surgery.plan(tiny_model(), "compacter++", overrides=overrides)
    message = str(error.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_a_mapping_naming_a_bundled_recipe_points_at_overrides():
    model = tiny_model()
    with pytest.raises(surgery.RecipeError) as error:
        surgery.apply(model, {"name": "compacter++", "options": {"n": 8}})
    message = str(error.value)
    assert "recipe key 'method'" in message and "'compacter++'" in message
    assert "overrides={'options.n': 8}" in message
    assert not hasattr(model, "surgery")


def test_a_plan_is_applied_as_made_not_overridden():
    model = tiny_model()
    the_plan = surgery.plan(model, "compacter++")
    with pytest.raises(surgery.SurgeryError, match="overrides go to surgery.plan"):
        surgery.apply(model, the_plan, overrides={"options.n": 2})
    assert not hasattr(model, "surgery")
