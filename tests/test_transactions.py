"""Apply and load are transactions: a failure anywhere leaves the model exactly as it was.

Failures are injected where only the mutation itself can fail (an allocation in the middle of
BitFit or Intrinsic-SAID, a splice of the third block, freezing, an interrupt), and in the
checkpoint cases a validation must catch first (missing/extra tensors, an edited config).
"As it was" means: the same state_dict (keys and values), the same forward output, the same
classes, hooks and requires_grad flags, and a later valid apply gives what it gives on a fresh copy.
"""

from __future__ import annotations

import copy
import importlib
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

import methods.bitfit
import methods.intrinsic_said
import surgery
from conftest import tiny_model
from surgery import CheckpointError
from surgery.checkpoint import CONFIG_FILE, WEIGHTS_FILE

plan_module = importlib.import_module("surgery.planner")  # `surgery.plan` is the function
checkpoint_module = importlib.import_module("surgery.checkpoint")
TINY_COMPACTER = {**surgery.load_recipe("compacter").to_dict(), "options": {**surgery.load_recipe("compacter").options, "n": 2}}


class Injected(RuntimeError):
    """The failure the tests inject."""


def structure(model: torch.nn.Module) -> list:
    """Classes, hook counts and requires_grad of every module/parameter: what a half-done surgery changes."""
    modules = [(name, type(m), len(m._forward_hooks), len(m._forward_pre_hooks), tuple(m._parameters), tuple(m._buffers))
               for name, m in model.named_modules()]
    return modules + [(name, p.requires_grad) for name, p in model.named_parameters()]


def snapshot(model: torch.nn.Module, batch: dict) -> tuple:
    with torch.no_grad():
        logits = model(**batch).logits.clone()
    return {n: t.clone() for n, t in model.state_dict().items()}, logits, structure(model), hasattr(model, "surgery")


def assert_as_before(model: torch.nn.Module, batch: dict, before: tuple) -> None:
    state, logits, layout, had_surgery = snapshot(model, batch)
    assert state.keys() == before[0].keys() and all(torch.equal(state[n], before[0][n]) for n in state)
    assert torch.equal(logits, before[1])
    assert layout == before[2]
    assert had_surgery == before[3]


def _touches_real_tensors(args, kwargs) -> bool:
    """True for a call on the real model, False for the plan's dry run on its meta replica."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.nn.Module):
            return not any(p.is_meta for p in value.parameters())
        if isinstance(value, torch.Tensor):
            return not value.is_meta
        if isinstance(value, (torch.device, str)) and str(value).startswith(("cpu", "cuda", "meta")):
            return torch.device(value).type != "meta"
    return True


def fail_on_call(monkeypatch, owner, name: str, call: int, error: BaseException | None = None) -> dict:
    """Make owner.name raise on its `call`-th call on the real model (dry-run calls on meta do not count)."""
    original, calls = getattr(owner, name), {"count": 0}

    def failing(*args, **kwargs):
        if _touches_real_tensors(args, kwargs):
            calls["count"] += 1
            if calls["count"] == call:
                raise error if error is not None else Injected(f"{name} call {call}")
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)
    return calls


def assert_later_apply_works(model, recipe, batch) -> None:
    reference = copy.deepcopy(model)
    torch.manual_seed(11)
    surgery.apply(model, recipe)
    torch.manual_seed(11)
    surgery.apply(reference, recipe)
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, reference(**batch).logits)
    assert structure(model) == structure(reference)


@pytest.mark.parametrize("recipe, owner, name, call", [
    ("adapter", plan_module, "splice_block", 3),                 # third block of four
    (TINY_COMPACTER, plan_module, "splice_block", 4),
    ("adapter", plan_module, "freeze_all_but", 1),               # after every splice
    ("bitfit", methods.bitfit, "attach_bias", 10),                # halfway through the biases
    ({"method": "intrinsic_said", "options": {"dimension": 3000}}, methods.intrinsic_said, "Fastfood", 5),
    ("prompt-tuning-r", plan_module, "freeze_all_but", 1),       # after the hooks are registered
])
def test_a_failure_during_apply_leaves_the_model_as_it_was(monkeypatch, variant, batch, recipe, owner, name, call):
    model = tiny_model(variant)
    before = snapshot(model, batch)
    calls = fail_on_call(monkeypatch, owner, name, call)
    with pytest.raises(Injected):
        surgery.apply(model, recipe)
    assert calls["count"] >= call
    assert_as_before(model, batch, before)
    monkeypatch.undo()
    assert_later_apply_works(model, recipe, batch)


def test_an_interrupt_during_apply_leaves_the_model_as_it_was(monkeypatch, batch):
    model = tiny_model()
    model.encoder.register_forward_hook(lambda module, args, output: None)  # a hook of the user's survives
    before = snapshot(model, batch)
    fail_on_call(monkeypatch, plan_module, "splice_block", 2, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        surgery.apply(model, "adapter")
    assert_as_before(model, batch, before)
    monkeypatch.undo()
    assert_later_apply_works(model, "adapter", batch)


def test_a_users_hook_handle_still_works_after_a_rollback(monkeypatch, batch):
    model = tiny_model()
    seen = []
    handle = model.encoder.block[0].register_forward_hook(lambda module, args, output: seen.append(1))
    fail_on_call(monkeypatch, plan_module, "freeze_all_but", 1)
    with pytest.raises(Injected):
        surgery.apply(model, "adapter")
    seen.clear()  # apply's initialisation check ran the model (and so the hook) before the failure
    with torch.no_grad():
        model(**batch)
    assert seen == [1]  # the hook survived the rollback
    handle.remove()
    with torch.no_grad():
        model(**batch)
    assert seen == [1]  # and its handle still removes it


@pytest.fixture(scope="module")
def saved_once(tmp_path_factory):
    model = tiny_model(seed=0)
    surgery.apply(model, "adapter")
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.requires_grad:
                parameter.add_(0.01)  # trained, so loading changes something
    return surgery.save_adapter(model, tmp_path_factory.mktemp("saved") / "ckpt")


@pytest.fixture
def saved(saved_once, tmp_path):
    """A fresh copy per test (tests edit it) of the adapter checkpoint saved once for the module."""
    return shutil.copytree(saved_once, tmp_path / "ckpt")


def _edit_config(folder, edit):
    """Edit the record and re-seal its checksum: a consistent forgery, which only the checks after
    the record checksum can catch (the checksum itself: tests/test_robust_checkpoint.py)."""
    path = folder / CONFIG_FILE
    config = json.loads(path.read_text())
    edit(config)
    if isinstance(config, dict) and "record_checksum" in config:
        config["record_checksum"] = surgery.verify.record_digest(config)
    path.write_text(json.dumps(config))


def _edit_tensors(folder, edit, keep_manifest=False):
    """Rewrite the weights file; the manifest follows unless `keep_manifest` (then the checksum fails)."""
    tensors = load_file(folder / WEIGHTS_FILE)
    edit(tensors)
    save_file(tensors, folder / WEIGHTS_FILE)
    if not keep_manifest:
        manifest = surgery.verify.tensor_manifest(tensors)
        _edit_config(folder, lambda config: config.update(checksums=manifest))


def _drop_one(tensors):
    tensors.pop(sorted(tensors)[0])


def _add_one(tensors):
    tensors["encoder.block.0.spliced.after_ffn.extra"] = torch.zeros(3)


LOAD_FAILURES = {
    "missing tensor": (lambda f: _edit_tensors(f, _drop_one), "missing: "),
    "extra tensor": (lambda f: _edit_tensors(f, _add_one), "unexpected: encoder.block.0.spliced.after_ffn.extra"),
    "missing tensor, manifest kept": (lambda f: _edit_tensors(f, _drop_one, keep_manifest=True), "does not hold the tensors"),
    "edited options": (lambda f: _edit_config(f, lambda c: c["recipe"].update(options={"bottleneck": 4})), "has shape"),
    "edited sites": (lambda f: _edit_config(f, lambda c: c["recipe"].update(sites=["after_ffn"])), "unexpected: "),
    "edited method": (lambda f: _edit_config(f, lambda c: c["recipe"].update(method="adaptor")), "did you mean 'adapter'"),
    "recipe not a mapping": (lambda f: _edit_config(f, lambda c: c.update(recipe=["adapter"])), "expected dict"),
    "edited layers": (lambda f: _edit_config(f, lambda c: c["recipe"].update(layers={"encoder": [0, 9]})), "out of range"),
}


@pytest.mark.parametrize("case", LOAD_FAILURES)
def test_a_bad_checkpoint_is_refused_before_the_model_changes(saved, batch, case):
    edit, message = LOAD_FAILURES[case]
    folder = saved
    edit(folder)
    model = tiny_model()
    before = snapshot(model, batch)
    with pytest.raises(CheckpointError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        surgery.load_adapter(model, folder)
    assert str(folder) in str(error.value)
    assert_as_before(model, batch, before)
    assert_later_apply_works(model, "adapter", batch)


def test_a_failure_while_loading_tensors_undoes_the_applied_recipe(saved, monkeypatch, batch):
    folder = saved
    model = tiny_model()
    before = snapshot(model, batch)
    real_apply = checkpoint_module.apply

    def apply_then_fail(*args, **kwargs):  # the recipe is applied, no tensor written yet
        real_apply(*args, **kwargs)
        raise Injected("after apply")

    monkeypatch.setattr(checkpoint_module, "apply", apply_then_fail)
    with pytest.raises(Injected):
        surgery.load_adapter(model, folder)
    assert_as_before(model, batch, before)
    monkeypatch.undo()
    surgery.load_adapter(model, folder)
    assert hasattr(model, "surgery")


def test_loading_into_a_model_with_the_recipe_applied_keeps_it_on_failure(saved, batch):
    folder = saved
    _edit_tensors(folder, lambda tensors: tensors.update({name: torch.zeros(1) for name in sorted(tensors)[-1:]}))
    model = tiny_model()
    surgery.apply(model, "adapter")
    before = snapshot(model, batch)
    with pytest.raises(CheckpointError, match="has shape"):
        surgery.load_adapter(model, folder)
    assert_as_before(model, batch, before)
