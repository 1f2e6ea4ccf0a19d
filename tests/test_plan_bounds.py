"""Plan time is plan time everywhere: every option typed and ranged, nothing allocated by a plan,
and sizes that cannot be allocated refused before anything is built — each naming the recipe key."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import surgery
import surgery.budget
from conftest import tiny_model
from surgery import RecipeError
from surgery.method import registered_methods
from surgery.options import option_specs

TINY_COMPACTER = {**surgery.load_recipe("compacter").to_dict(), "options": {**surgery.load_recipe("compacter").options, "n": 2}}
PLANNED = [
    "adapter", "adapter-lowrank", "pfeiffer-adapter", TINY_COMPACTER, "bitfit", "full-finetune", "prompt-tuning-r",
    "prompt-tuning-t", {"method": "intrinsic_said", "options": {"dimension": 5000}},
    {"method": "adapter", "sites": ["after_ffn"], "options": {"bottleneck": 64}},            # the widest bottleneck
    {"method": "adapter", "sites": ["after_ffn"], "options": {"projection": "phm", "n": 2}},  # own rule per layer
]


class RealAllocations(TorchDispatchMode):
    """Counts the bytes of every tensor an operator returns off the meta device."""

    def __init__(self):
        super().__init__()
        self.bytes, self.operators = 0, set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        output = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(output)[0]:
            if isinstance(tensor, torch.Tensor) and not tensor.is_meta:
                self.bytes += tensor.numel() * tensor.element_size()
                self.operators.add(str(func))
        return output


@pytest.mark.parametrize("recipe", PLANNED, ids=lambda r: r if isinstance(r, str) else str(r.get("options")))
def test_plan_allocates_nothing_off_the_meta_device(recipe):
    model = tiny_model()
    counter = RealAllocations()
    with counter:
        planned = surgery.plan(model, recipe)
    assert counter.bytes == 0, counter.operators
    assert planned.trainable_parameters > 0


def test_the_allocation_counter_sees_what_apply_allocates():
    """So the zero above can fail: the same counter around apply counts the adapters' bytes."""
    model = tiny_model()
    counter = RealAllocations()
    with counter:
        report = surgery.report(surgery.apply(model, "adapter"))
    assert counter.bytes >= 4 * report.groups["inserted modules"]


def test_every_option_of_every_method_has_a_type_and_numbers_a_range():
    for name, method in registered_methods().items():
        for spec in option_specs(method.Options):
            assert spec.kind in (int, float, bool, str) or spec.choices, (name, spec.name)
            if spec.kind in (int, float):
                assert spec.range is not None, f"{name}: option {spec.name} has no range"


FLOAT_OPTIONS = [("adapter", "dense_init_std"), ("adapter", "rule_init_std"), ("prompt_tuning", "init_std")]


@pytest.mark.parametrize("method, option", FLOAT_OPTIONS)
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, -1.0, 10**400], ids=["inf", "-inf", "nan", "-1", "10**400"])
def test_non_finite_and_negative_numbers_are_refused(method, option, value):
    recipe = {"method": method, "options": {option: value}}
    if method == "adapter":
        recipe.update(sites=["after_ffn"], options={option: value, "projection": "phm", "n": 2})
    model = tiny_model()
    with pytest.raises(RecipeError) as error:
        surgery.plan(model, recipe)
    assert error.value.key == f"options.{option}"
    assert "finite number" in str(error.value)
    assert not hasattr(model, "surgery")


@pytest.mark.parametrize("recipe, key, hint", [
    ({"method": "adapter", "sites": ["after_ffn"], "options": {"bottleneck": 65}}, "options.bottleneck", "[1, 64]"),
    ({"method": "bitfit", "layers": {"encoder": [0]}}, "layers", "whole model"),
    ({"method": "prompt_tuning", "layers": {"decoder": "none"}}, "layers", "whole model"),
    ({"method": "intrinsic_said", "options": {"dimension": 10**6}, "layers": {"encoder": "all"}}, "layers", "whole model"),
    ({"method": "intrinsic_said", "options": {"dimension": 10**12}}, "options.dimension", "parameters of the model"),
    ({"method": "adapter", "sites": ["after_ffn"], "options": {"rank": 2**70}}, "options.rank", "at most 9223372036854775807"),
    ({"name": 7, "method": "adapter", "sites": ["after_ffn"]}, "name", "a string"),
    ({"name": " ", "method": "adapter", "sites": ["after_ffn"]}, "name", "non-empty"),
    ({"method": "adapter", "sites": ["after_ffn"], "options": ["n", 2]}, "options", "mapping"),
    ({"method": "adapter", "sites": {"after_ffn": 1}}, "sites", "after_ffn"),
    ({"method": "adapter", "sites": ["after_ffn"], "train": [["layer_norms"]]}, "train", "strings"),
    ({"method": "adapter", "sites": ["after_ffn"], "layers": {"encoder": {"skip_first": 1, "every": 2}}}, "layers.encoder.every", "skip_first"),
    ({"method": "adapter", "sites": ["after_ffn"], "options": {"projection": True}}, "options.projection", "dense"),
])
def test_silently_ignored_or_deep_failures_are_plan_time_errors(recipe, key, hint):
    model = tiny_model()
    with pytest.raises(RecipeError) as error:
        surgery.plan(model, recipe)
    assert error.value.key == key and hint in str(error.value)
    assert not hasattr(model, "surgery")


@pytest.mark.parametrize("recipe, key", [
    ({"method": "adapter", "sites": ["after_ffn"]}, "options.reduction_factor"),
    ({"method": "adapter", "sites": ["after_ffn"], "options": {"bottleneck": 8}}, "options.bottleneck"),
    ({"method": "adapter", "sites": ["after_ffn"], "options": {"projection": "phm", "factorized": True, "n": 2, "rank": 5000}},
     "options.rank"),
    ({"method": "adapter", "sites": ["after_ffn"], "options": {"projection": "phm", "n": 2, "bottleneck": 64}},
     "options.bottleneck"),
    ({"method": "prompt_tuning", "options": {"length": 400}}, "options.length"),
    ({"method": "intrinsic_said", "options": {"dimension": 20000}}, "options.dimension"),
])
def test_a_recipe_larger_than_the_free_memory_is_refused_naming_the_size_option(monkeypatch, recipe, key):
    """With the free memory set to 4 KiB, what each recipe adds no longer fits."""
    model = tiny_model()
    before = {n: t.clone() for n, t in model.state_dict().items()}
    planned = surgery.plan(model, recipe)          # fits in the real free memory
    monkeypatch.setattr(surgery.budget, "free_bytes", lambda device: 4 * 1024)
    with pytest.raises(RecipeError) as error:
        surgery.apply(model, recipe)
    message = str(error.value)
    assert error.value.key == key and "4.0 KiB free on cpu" in message and "numbers" in message
    added = planned.added_parameters
    assert added * 4 > 4 * 1024  # the refused recipe really adds more than the bound
    assert not hasattr(model, "surgery") and all(torch.equal(model.state_dict()[n], t) for n, t in before.items())


def test_the_size_bound_follows_the_target_device(monkeypatch):
    """plan(..., device=) checks the device apply will allocate on (e.g. a meta model planned for CPU)."""
    model = tiny_model().to("meta")
    recipe = {"method": "prompt_tuning", "options": {"length": 400}}
    surgery.plan(model, recipe)                            # meta: nothing will be allocated
    monkeypatch.setattr(surgery.budget, "free_bytes", lambda device: 1024 if device.type == "cpu" else None)
    surgery.plan(model, recipe)
    with pytest.raises(RecipeError, match="1.0 KiB free on cpu"):
        surgery.plan(model, recipe, device="cpu")


def test_sizes_no_machine_holds_are_refused_without_allocating():
    model = tiny_model()
    counter = RealAllocations()
    cases = [({"method": "prompt_tuning", "options": {"length": 10**12, "max_source_length": 10**13}}, "options.length"),
             ({"method": "adapter", "sites": ["after_ffn"],
               "options": {"projection": "phm", "factorized": True, "n": 2, "rank": 10**15}}, "options.rank")]
    for recipe, key in cases:
        with counter, pytest.raises(RecipeError) as error:
            surgery.apply(model, recipe)
        assert error.value.key == key and ("can allocate" in str(error.value) or "cannot be built" in str(error.value))
    assert counter.bytes == 0 and not hasattr(model, "surgery")


def test_a_recipe_instance_is_checked_like_a_mapping():
    bad = surgery.Recipe(name="hand-made", method="adapter", sites=("after_fnn",))
    with pytest.raises(RecipeError, match="did you mean 'after_ffn'"):
        surgery.plan(tiny_model(), bad)


def test_non_text_recipe_file_is_a_recipe_error(tmp_path):
    path = tmp_path / "binary.yaml"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(RecipeError) as error:
        surgery.plan(tiny_model(), str(path))
    assert error.value.key == "recipe" and "not a UTF-8 text file" in str(error.value)
