"""A recipe fuzzer: hypothesis strategies over the recipe schema.

Three kinds of input, each checked on a tiny T5 (1 + 1 blocks, d_model 16):

* recipes of well-typed, in-range values (which may still not fit the model: n not dividing the
  bottleneck, a prompt longer than its budget, ...): a `RecipeError` naming a key of the schema,
  or a model that applies the recipe and trains two steps to a finite loss;
* a valid recipe with exactly one thing wrong — a wrong type, a value out of range or not
  finite, an unknown key at any level: a `RecipeError` naming exactly that key;
* recipe files that are not text, and random text: a `RecipeError` (key 'recipe' for non-text).

After every error the model is exactly as before (state, classes, hooks, requires_grad).
The schema comes from the methods themselves (`surgery.options.option_specs`), so a new option
is fuzzed without editing this file.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from transformers import T5Config, T5ForConditionalGeneration

import surgery
from surgery import RecipeError
from surgery.groups import TRAIN_GROUPS
from surgery.method import SiteMethod, registered_methods
from surgery.options import OptionSpec, option_specs
from surgery.recipe import RECIPE_KEYS

# No deadline: an example's time says how busy the machine is (one took 18 s next to a pretraining run), not
# whether the engine is right; speed is measured by benchmarks, never asserted by tests.
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

torch.manual_seed(0)
BASE = T5ForConditionalGeneration(T5Config(vocab_size=32, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2,
                                           dropout_rate=0.0, decoder_start_token_id=0)).eval()
BASE_STATE = {n: t.clone() for n, t in BASE.state_dict().items()}
METHODS = sorted(registered_methods())
SITE_METHODS = [m for m in METHODS if issubclass(registered_methods()[m], SiteMethod)]
# Upper ends for sizes, so that valid recipes stay tiny; anything else uses the option's own range.
SMALL = {"reduction_factor": 20, "bottleneck": 20, "rank": 4, "n": 5, "length": 10, "max_source_length": 24,
         "vocab_low": 40, "vocab_high": 40, "dimension": 3000}
# Hypothesis favours small integers; SAID needs one coordinate per tensor (26 here) before it fits.
SPREAD = {"dimension": st.integers(2, 40) | st.integers(27, 3000)}
ACTIVATIONS = ["relu", "gelu_new", "tanh", "silu", "not-an-activation"]
SITES = list(surgery.SITE_NAMES)


def unchanged(model) -> bool:
    state = model.state_dict()
    return (not hasattr(model, "surgery") and state.keys() == BASE_STATE.keys()
            and all(torch.equal(state[n], BASE_STATE[n]) for n in state)
            and all(type(b).__name__ == "T5Block" for b in [*model.encoder.block, *model.decoder.block])
            and all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules()))


def in_range(spec: OptionSpec) -> st.SearchStrategy:
    if spec.name in SPREAD:
        return SPREAD[spec.name]
    if spec.choices:
        return st.sampled_from(spec.choices)
    if spec.kind is bool:
        return st.booleans()
    if spec.kind is str:
        return st.sampled_from(ACTIVATIONS)
    bounds = spec.range
    low = bounds.minimum if bounds.minimum is not None else (bounds.above if bounds.above is not None else 0)
    high = bounds.maximum if bounds.maximum is not None else low + 2
    if spec.kind is int:
        return st.integers(int(low), int(min(high, SMALL.get(spec.name, low + 1000))))
    return st.floats(low, min(high, low + 2.0), exclude_min=bounds.above is not None, allow_nan=False)


def out_of_range(spec: OptionSpec) -> st.SearchStrategy:
    """Values of the right type that the option's range (or choices) refuses, or non-finite numbers."""
    if spec.choices:
        return st.text(max_size=8).filter(lambda v: v not in spec.choices)
    if spec.kind in (bool, str):
        return st.nothing()
    bounds = spec.range
    floor = bounds.minimum if bounds.minimum is not None else bounds.above
    if spec.kind is int:
        below = st.integers(max_value=int(floor) - 1) if floor is not None else st.nothing()
        return st.one_of(below, st.integers(min_value=2**63))
    below = (st.floats(max_value=floor, exclude_max=bounds.minimum is not None, allow_nan=False)
             if floor is not None else st.nothing())
    return st.one_of(below, st.sampled_from([math.inf, -math.inf, math.nan]))


def wrong_type(spec: OptionSpec) -> st.SearchStrategy:
    others: list[Any] = [[1], {"a": 1}, "3"]
    if not spec.optional:
        others.append(None)
    if spec.kind is not bool:
        others.append(True)
    if spec.kind is int:
        others.append(2.5)
    if spec.kind in (bool, str):
        others.append(7)
    return st.sampled_from(others)


# Options whose defaults are sized for T5-base, not for d_model 16: given most of the time, so
# that well-typed recipes of these methods also reach the training half of the test.
USUALLY_GIVEN = {"bottleneck", "dimension"}


@st.composite
def options_of(draw, method: str) -> dict[str, Any]:
    specs = option_specs(registered_methods()[method].Options)
    chosen = draw(st.lists(st.sampled_from(specs), unique_by=lambda s: s.name, max_size=len(specs))) if specs else []
    chosen += [s for s in specs if s.name in USUALLY_GIVEN and s not in chosen and draw(st.integers(0, 4)) > 0]
    return {spec.name: draw(in_range(spec)) for spec in chosen}


def layer_spec(depth: int = 1) -> st.SearchStrategy:
    return st.one_of(st.sampled_from(["all", "none"]), st.lists(st.integers(0, depth - 1), max_size=2),
                     st.builds(lambda n: {"skip_first": n}, st.integers(0, depth)))


@st.composite
def well_typed_recipes(draw) -> dict[str, Any]:
    method = draw(st.sampled_from(METHODS))
    recipe: dict[str, Any] = {"method": method, "options": draw(options_of(method))}
    if draw(st.booleans()):
        recipe["name"] = draw(st.text(min_size=1, max_size=12).filter(str.strip))
    if method in SITE_METHODS:
        recipe["sites"] = draw(st.lists(st.sampled_from(SITES), min_size=1, max_size=3, unique=True))
        recipe["layers"] = draw(layer_spec() | st.fixed_dictionaries({}, optional={"encoder": layer_spec(),
                                                                                    "decoder": layer_spec()}))
    recipe["train"] = draw(st.lists(st.sampled_from(sorted(TRAIN_GROUPS)), max_size=2, unique=True))
    return recipe


# One valid recipe per method on the tiny model, and the ways to break each in exactly one place.
VALID = {
    "adapter": {"method": "adapter", "sites": ["after_ffn"], "options": {"bottleneck": 4, "projection": "phm", "n": 2,
                                                                      "factorized": True, "shared_rule": True}},
    "bitfit": {"method": "bitfit"},
    "full-finetune": {"method": "full-finetune"},
    "intrinsic-said": {"method": "intrinsic-said", "options": {"dimension": 500}},
    "prompt-tuning": {"method": "prompt-tuning", "options": {"length": 3, "max_source_length": 16}},
}
UNKNOWN = st.text(min_size=1, max_size=10).filter(lambda k: k not in RECIPE_KEYS)


@st.composite
def broken_in_one_place(draw) -> tuple[dict[str, Any], str]:
    """(recipe, the key its RecipeError must name)."""
    method = draw(st.sampled_from(sorted(VALID)))
    recipe = copy.deepcopy(VALID[method])
    specs = option_specs(registered_methods()[method].Options)
    where = draw(st.sampled_from(["option type", "option range", "option name", "top key", "name", "description",
                                  "method", "options", "sites", "layers", "layer spec", "layer key", "train"]))
    if where in ("option type", "option range") and specs:
        spec = draw(st.sampled_from(specs))
        value = draw(wrong_type(spec) if where == "option type" else out_of_range(spec) | wrong_type(spec))
        recipe.setdefault("options", {})[spec.name] = value
        return recipe, f"options.{spec.name}"
    if where == "option name":
        name = draw(st.text(min_size=1, max_size=10).filter(lambda n: n not in {s.name for s in specs}))
        recipe.setdefault("options", {})[name] = 1
        return recipe, f"options.{name}"
    if where == "top key":
        key = draw(UNKNOWN)
        recipe[key] = draw(st.integers() | st.text(max_size=4))
        return recipe, key
    if where in ("name", "description"):
        recipe[where] = draw(st.sampled_from([3, 2.5, ["x"], {"a": 1}, True]))
        return recipe, where
    if where == "method":
        recipe["method"] = draw(st.sampled_from([3, None, ["adapter"], "adaptor", "lora"]))
        return recipe, "method"
    if where == "options":
        recipe["options"] = draw(st.sampled_from([[1, 2], "n: 2", 3]))
        return recipe, "options"
    if where == "sites":
        if method in SITE_METHODS:
            recipe["sites"] = draw(st.sampled_from([["after_fnn"], 3, [["after_ffn"]], ["after_ffn", "after_ffn"], []]))
        else:
            recipe["sites"] = ["after_ffn"]
        return recipe, "sites"
    if where == "train":
        recipe["train"] = draw(st.sampled_from([["layernorms"], 3, [["layer_norms"]], [None]]))
        return recipe, "train"
    if method not in SITE_METHODS:  # layers of any kind for a whole-model method
        recipe["layers"] = draw(st.sampled_from([{"encoder": "all"}, {"decoder": [0]}, 3]))
        return recipe, "layers"
    if where == "layers":  # (`all`, `[0]`, `{skip_first: 1}` are valid: one selection for every stack)
        bad = draw(st.sampled_from([3, "some", ["x"], [[0]], {"middle": "all"}, {5: "all"}, {"skip_first": -1}]))
        recipe["layers"] = bad
        return recipe, "layers.skip_first" if bad == {"skip_first": -1} else "layers"
    stack = draw(st.sampled_from(["encoder", "decoder"]))
    if where == "layer spec":
        recipe["layers"] = {stack: draw(st.sampled_from(["some", 3, [1], [-1], ["2-1"], [True], {"skip_first": 2}]))}
        return recipe, f"layers.{stack}" + (".skip_first" if isinstance(recipe["layers"][stack], dict) else "")
    key = draw(UNKNOWN.filter(lambda k: k != "skip_first"))
    recipe["layers"] = {stack: {"skip_first": 0, key: 1}}
    return recipe, f"layers.{stack}.{key}"


def schema_key(key: str, recipe: dict[str, Any]) -> bool:
    """A key of the recipe schema: a top-level key, options.<an option of the method or given>, layers.<…>."""
    head, _, rest = key.partition(".")
    if head == "options" and rest:
        method = recipe.get("method")
        names = {s.name for s in option_specs(registered_methods()[method].Options)} if method in METHODS else set()
        return rest in names or rest in (recipe.get("options") or {})
    if head == "layers" and rest:
        return rest.split(".")[0] in ("encoder", "decoder")
    return key in RECIPE_KEYS or key == "recipe" or key in recipe


def trains_to_a_finite_loss(model) -> bool:
    generator = torch.Generator().manual_seed(0)
    input_ids, labels = torch.randint(2, 32, (2, 5), generator=generator), torch.randint(2, 32, (2, 3), generator=generator)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    model.train()
    for _ in range(2):
        loss = model(input_ids=input_ids, labels=labels).loss
        if not torch.isfinite(loss):
            return False
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return bool(torch.isfinite(model(input_ids=input_ids, labels=labels).loss))


@FUZZ
@given(well_typed_recipes())
def test_well_typed_recipes_fail_naming_a_key_or_train(recipe):
    model = copy.deepcopy(BASE)
    try:
        surgery.apply(model, recipe)
    except RecipeError as error:
        assert schema_key(error.key, recipe), (error.key, recipe)
        assert repr(error.key) in str(error)
        assert unchanged(model), recipe
        return
    assert trains_to_a_finite_loss(model), recipe


@FUZZ
@given(broken_in_one_place())
def test_one_thing_wrong_is_named_and_changes_nothing(case):
    recipe, key = case
    model = copy.deepcopy(BASE)
    with pytest.raises(RecipeError) as error:
        surgery.apply(model, recipe)
    assert error.value.key == key, (recipe, str(error.value))
    assert repr(key) in str(error.value)
    assert unchanged(model)


@pytest.mark.parametrize("method", sorted(VALID))
def test_the_fuzzers_valid_recipes_train(method):
    """The starting points of the one-thing-wrong fuzzer are valid (so its errors come from the change)."""
    model = copy.deepcopy(BASE)
    surgery.apply(model, VALID[method])
    assert trains_to_a_finite_loss(model)


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=64))
def test_recipe_files_that_are_not_text(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("fuzz") / "recipe.yaml"
    path.write_bytes(content + b"\xff\xfe")  # never valid UTF-8
    model = copy.deepcopy(BASE)
    with pytest.raises(RecipeError) as error:
        surgery.apply(model, str(path))
    assert error.value.key == "recipe" and "not a UTF-8 text file" in str(error.value)
    assert unchanged(model)


@settings(max_examples=25, deadline=None)
@given(st.text(max_size=80))
@example("?")  # YAML's empty key: {None: None}, found by this test on a fresh clone
@example("1: x")
def test_random_text_files(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("fuzz") / "recipe.yaml"
    path.write_text(content, encoding="utf-8")
    model = copy.deepcopy(BASE)
    with pytest.raises(RecipeError) as error:  # random text is never a complete recipe on this model
        surgery.apply(model, str(path))
    assert schema_key(error.value.key, {}) or error.value.key in content
    assert unchanged(model)
