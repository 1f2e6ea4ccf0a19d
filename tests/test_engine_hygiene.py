"""Engine hygiene: a method's bug is not reported as a bad recipe, hooks are removed by their
handles, nothing writes PyTorch's private module dicts, and what the engine puts on the model
(generate, save_pretrained, the adapter_names hooks) is gone when the last adapter goes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

import surgery
from conftest import tiny_model
from surgery import RecipeError
from surgery.method import METHODS, SiteMethod, register_method

ROOT = Path(__file__).resolve().parent.parent


def _state(model):
    return {n: t.detach().clone() for n, t in model.state_dict().items()}


def _unchanged(model, before):
    after = model.state_dict()
    return after.keys() == before.keys() and all(torch.equal(after[n], before[n]) for n in before)


class _Raising(SiteMethod):
    """A method whose site module build raises whatever the test puts in `error`."""
    name = "hygiene-raising"
    error: BaseException = ValueError("bug")

    def build_site_module(self, site, shared):
        raise type(self).error


@pytest.fixture
def raising_method():
    register_method(_Raising)
    yield _Raising
    METHODS.pop(_Raising.name, None)


@pytest.mark.parametrize("error", [ValueError("bug"), RuntimeError("shape mismatch in my method"), KeyError("k")])
def test_a_method_bug_propagates_unchanged_and_the_model_is_untouched(raising_method, error):
    raising_method.error = error
    model = tiny_model()
    before = _state(model)
    for call in (surgery.plan, surgery.apply):
        with pytest.raises(type(error)) as caught:
            call(model, {"method": raising_method.name, "sites": ["after_ffn"]})
        assert caught.value is error and not isinstance(caught.value, RecipeError)
    assert _unchanged(model, before) and not hasattr(model, "surgery")


@pytest.mark.parametrize("error", [torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB"),
                                   RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: "
                                                "can't allocate memory: you tried to allocate 1099511627776 bytes"),
                                   MemoryError()])
def test_an_allocation_failure_still_names_the_size_option(raising_method, error):
    raising_method.error = error
    model = tiny_model()
    before = _state(model)
    with pytest.raises(RecipeError) as caught:
        surgery.apply(model, {"method": raising_method.name, "sites": ["after_ffn"]})
    assert caught.value.key == "options" and "cannot be built" in str(caught.value)
    assert _unchanged(model, before) and not hasattr(model, "surgery")


# -- no method of the model replaced, no callback lists; the adapters recorded in the config; plan_of --

def _hook_count(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_the_runner_reads_no_private_plan_attribute():
    for path in [*(ROOT / "surgery").glob("*.py"), *(ROOT / "runners").rglob("*.py")]:
        assert "_surgery_plan" not in path.read_text(), path


def test_no_import_time_callback_lists_and_no_patched_methods():
    for path in (ROOT / "surgery").glob("*.py"):
        text = path.read_text()
        assert "AFTER_APPLY" not in text and "ON_LAST_REMOVED" not in text, path


def test_apply_replaces_no_method_of_the_model_and_remove_leaves_nothing_behind(tmp_path):
    model = tiny_model().eval()
    hooks_before, attributes_before = _hook_count(model), set(vars(model))
    config_before = model.config.to_dict()
    surgery.apply(model, "adapter")
    surgery.apply(model, "bitfit", name="b")
    assert set(vars(model)) == attributes_before            # no instance attribute: generate, save_pretrained are the class's
    assert [a["name"] for a in model.config.t5_surgery["adapters"]] == ["default", "b"]
    ids = torch.tensor([[3, 4, 5, 1], [6, 7, 1, 0]])
    with surgery.mixed_batch(model, ["default", "b"]):
        both = model.generate(input_ids=ids, max_new_tokens=3, do_sample=False)
    for row, name in enumerate(["default", "b"]):
        surgery.set_active(model, name)
        alone = model.generate(input_ids=ids[row:row + 1], max_new_tokens=3, do_sample=False)
        assert torch.equal(both[row:row + 1, : alone.shape[1]], alone)
    assert model.config.t5_surgery["active"] == ["b"]
    with pytest.raises(surgery.SurgeryError, match="adapter_names= is not an argument of the model: run the batch "
                                                   "inside `with surgery.mixed_batch"):
        model(input_ids=ids, decoder_input_ids=ids, adapter_names=["default", "b"])   # never silently ignored
    surgery.remove(model, "b")
    surgery.remove(model, "default")
    assert set(vars(model)) == attributes_before and model.config.to_dict() == config_before
    assert _hook_count(model) == hooks_before


def test_plan_of_gives_the_plan_an_adapter_was_applied_with():
    model = tiny_model()
    planned = surgery.plan(model, "adapter")
    surgery.apply(model, planned)
    surgery.apply(model, "bitfit", name="b")
    assert surgery.plan_of(model, "default") is planned
    assert surgery.plan_of(model).method.name == "bitfit"   # the one in effect


# -- item: no writes to PyTorch's private module dicts; hooks removed by their handles -----------

PRIVATE_DICTS = {"_parameters", "_buffers", "_modules", "_non_persistent_buffers_set", "_forward_hooks",
                 "_forward_pre_hooks", "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs",
                 "_forward_hooks_always_called", "_backward_hooks", "_backward_pre_hooks", "_state_dict_hooks",
                 "_state_dict_pre_hooks", "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks"}
MUTATORS = {"pop", "popitem", "clear", "update", "setdefault", "add", "discard", "remove", "__setitem__", "__delitem__"}


def private_dict_writes(source: str) -> list[int]:
    """Line numbers where `source` writes one of PyTorch's private module dicts (reads are not listed)."""
    tree = ast.parse(source)
    parent = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    lines = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and node.attr in PRIVATE_DICTS):
            continue
        above = parent.get(node)
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            lines.append(node.lineno)                                  # module._modules = ... / del module._modules
        elif isinstance(above, ast.Subscript) and isinstance(above.ctx, (ast.Store, ast.Del)):
            lines.append(node.lineno)                                  # module._parameters[k] = ... / del ...[k]
        elif isinstance(above, ast.Attribute) and above.attr in MUTATORS and isinstance(parent.get(above), ast.Call):
            lines.append(node.lineno)                                  # module._forward_hooks.pop(k)
    return sorted(lines)


def test_the_checker_finds_each_kind_of_write():
    writes = ("m._parameters['w'] = p\ndel m._modules['x']\nm._forward_hooks.pop(1)\nm._buffers.update({})\n"
              "m._modules = {}\nm._forward_pre_hooks_with_kwargs.pop(2, None)\n")
    assert private_dict_writes(writes) == [1, 2, 3, 4, 5, 6]
    assert private_dict_writes("x = m._parameters.get('w')\nfor k in m._forward_hooks: pass\nn = len(m._modules)\n") == []


def test_no_private_module_dict_is_written_in_the_engine_or_the_methods():
    found = {str(path.relative_to(ROOT)): lines for folder in ("surgery", "methods")
             for path in sorted((ROOT / folder).rglob("*.py")) if (lines := private_dict_writes(path.read_text()))}
    assert found == {}


@pytest.mark.parametrize("recipes", [["adapter", "bitfit"], ["prompt-tuning-r"], ["intrinsic-said"],
                                     ["adapter", {"method": "adapter", "sites": ["after_ffn"], "train": ["layer_norms"]}]])
def test_removing_every_adapter_leaves_no_hook_of_the_engine(recipes):
    model = tiny_model()
    user = model.encoder.register_forward_hook(lambda module, args, output: None)   # the user's own stays
    before = _hook_count(model)
    for index, recipe in enumerate(recipes):
        surgery.apply(model, recipe, name=None if index == 0 else f"a{index}")
    assert _hook_count(model) > before
    for name in reversed(surgery.list_adapters(model)):
        surgery.remove(model, name)
    assert _hook_count(model) == before and user.id in model.encoder._forward_hooks


def test_method_names_agree_with_the_bundled_recipes_and_old_names_still_load():
    from surgery.recipe import RENAMED_METHODS

    for name in surgery.bundled_recipes():
        recipe = surgery.load_recipe(name)
        assert recipe.method == name or recipe.method in ("adapter", "bitfit", "prompt-tuning"), (name, recipe.method)
    for old, new in RENAMED_METHODS.items():   # recipes and checkpoints written with the old names
        assert surgery.load_recipe({"method": old}).method == new
        assert surgery.method.get_method_class(old).name == new
