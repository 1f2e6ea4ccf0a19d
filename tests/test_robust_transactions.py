"""Every mutating call is all or nothing, interruption and disk errors included.

A failure (KeyboardInterrupt, or OSError for a disk error) is injected at the k-th call of the
step that writes (`Tensor.copy_`, `Tensor.requires_grad_`), in the middle of the change; the
model must then be exactly as before: every tensor of its state dict bit for bit, the adapters,
which are in effect, every parameter's requires_grad, its modules' classes and hooks, its outputs.
"""

from __future__ import annotations

import functools

import pytest
import torch

import surgery
from conftest import tiny_model

TINY_COMPACTER = {"name": "compacter", "method": "adapter", "sites": ["after_self_attention", "after_ffn"],
                  "options": {"projection": "phm", "n": 2, "factorized": True, "shared_rule": True, "bottleneck": 8},
                  "train": ["layer_norms"]}   # the default adapter trains its own copies of the layer norms
DENSE = {"name": "dense", "method": "adapter", "sites": ["after_ffn"], "options": {"bottleneck": 8}}
INTRINSIC = {"name": "said", "method": "intrinsic_said", "options": {"dimension": 64}}
FAILURES = [KeyboardInterrupt, OSError]


def perturb(model: torch.nn.Module, seed: int) -> None:
    """Stand-in for training: move every trainable tensor away from its initial value."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.05)


def outputs(model: torch.nn.Module) -> torch.Tensor:
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 1]])
    with torch.no_grad():
        return model(input_ids=ids, decoder_input_ids=ids).logits


def everything(model: torch.nn.Module) -> dict:
    """What the model is: values, structure, routing, training flags, outputs."""
    state = getattr(model, "surgery", None)
    return {
        "values": {n: t.detach().clone() for n, t in model.state_dict().items()},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "modules": [(n, type(m), len(m._forward_hooks), len(m._forward_pre_hooks)) for n, m in model.named_modules()],
        "adapters": surgery.list_adapters(model),
        "active": state.routing.active if state is not None else None,
        "outputs": outputs(model),
    }


def assert_same(model: torch.nn.Module, before: dict) -> None:
    after = everything(model)
    assert after["values"].keys() == before["values"].keys()
    changed = [n for n, t in after["values"].items() if not torch.equal(t, before["values"][n])]
    assert not changed, f"tensors changed by the failed call: {changed[:5]}"
    for key in ("requires_grad", "modules", "adapters", "active"):
        assert after[key] == before[key], key
    assert torch.equal(after["outputs"], before["outputs"])


def fail_at(monkeypatch, method: str, k: int, error: type[BaseException]) -> list[int]:
    """Make the k-th call of torch.Tensor.<method> raise `error` (once); returns the call counter.

    (A call torch passes on to a TorchFunctionMode comes back through the patched method: that
    inner call is the same write, so only the outermost one counts.)
    """
    real = getattr(torch.Tensor, method)
    calls, depth = [0], [0]

    @functools.wraps(real)
    def failing(self, *args, **kwargs):
        if depth[0]:
            return real(self, *args, **kwargs)
        calls[0] += 1
        if calls[0] == k:
            raise error("injected")
        depth[0] += 1
        try:
            return real(self, *args, **kwargs)
        finally:
            depth[0] -= 1

    monkeypatch.setattr(torch.Tensor, method, failing)
    return calls


def trained(recipe, seed: int = 1, name: str | None = None, model: torch.nn.Module | None = None) -> torch.nn.Module:
    model = tiny_model() if model is None else model
    torch.manual_seed(100 + seed)
    surgery.apply(model, recipe, name=name)
    perturb(model, seed)
    return model.eval()


@pytest.mark.parametrize("error", FAILURES)
def test_load_adapter_into_a_spliced_model_interrupted_at_the_third_write(tmp_path, monkeypatch, error):
    folder = surgery.save_adapter(trained(TINY_COMPACTER, seed=1), tmp_path / "a")
    model = trained(TINY_COMPACTER, seed=2)             # the same recipe applied, other values
    before = everything(model)
    calls = fail_at(monkeypatch, "copy_", 3, error)
    with pytest.raises(error, match="injected"):
        surgery.load_adapter(model, folder, allow_other_base=True)
    monkeypatch.undo()
    assert calls[0] > 3                                # it failed mid-write, and the writes were undone
    assert_same(model, before)
    surgery.load_adapter(model, folder, allow_other_base=True)   # and it still loads afterwards
    assert not torch.equal(outputs(model), before["outputs"])


@pytest.mark.parametrize("error", FAILURES)
def test_remove_default_interrupted_after_taking_its_tensors_out(monkeypatch, error):
    """Removing the default deletes its modules, hooks and trained layer-norm copies, then sets
    requires_grad for the adapter that takes over: a failure there undoes the deletions too."""
    model = trained(DENSE, seed=3, name="rte", model=trained(TINY_COMPACTER, seed=1))
    surgery.set_active(model, "default")
    before = everything(model)
    calls = fail_at(monkeypatch, "requires_grad_", 2, error)
    with pytest.raises(error, match="injected"):
        surgery.remove(model, "default")
    monkeypatch.undo()
    assert calls[0] >= 2
    assert_same(model, before)
    surgery.remove(model, "default")                   # it still works afterwards
    assert surgery.list_adapters(model) == ["rte"]
    untouched = tiny_model()                           # the default trained copies: the base was never written
    base = {n: t for n, t in model.state_dict().items() if not surgery.naming.is_added(n)}
    assert base.keys() == untouched.state_dict().keys()
    assert all(torch.equal(t, untouched.state_dict()[n]) for n, t in base.items())


@pytest.mark.parametrize("error", FAILURES)
def test_set_active_interrupted_while_setting_requires_grad(monkeypatch, error):
    model = trained(DENSE, seed=3, name="rte", model=trained(TINY_COMPACTER, seed=1))
    before = everything(model)
    assert before["active"] == ("rte",)
    calls = fail_at(monkeypatch, "requires_grad_", 5, error)
    with pytest.raises(error, match="injected"):
        surgery.set_active(model, "default")
    monkeypatch.undo()
    assert calls[0] >= 5
    assert_same(model, before)


@pytest.mark.parametrize("error", FAILURES)
def test_fold_of_intrinsic_said_interrupted_at_the_third_weight(monkeypatch, error):
    torch.manual_seed(0)
    model = tiny_model()
    surgery.apply(model, INTRINSIC)
    with torch.no_grad():
        model.surgery.adapters.default.intrinsic.z.normal_()           # a subspace point away from zero: folding changes weights
    before = everything(model)
    calls = fail_at(monkeypatch, "copy_", 3, error)
    with pytest.raises(error, match="injected"):
        surgery.fold(model)
    monkeypatch.undo()
    assert calls[0] >= 3
    assert_same(model, before)
    surgery.fold(model)                                # and it still folds afterwards, to the same function
    assert not hasattr(model, "surgery")
    torch.testing.assert_close(outputs(model), before["outputs"], rtol=0, atol=1e-5)


def test_apply_interrupted_leaves_the_model_as_it_was(monkeypatch):
    model = trained(TINY_COMPACTER, seed=1)
    before = everything(model)
    fail_at(monkeypatch, "requires_grad_", 3, KeyboardInterrupt)
    with pytest.raises(KeyboardInterrupt):
        surgery.apply(model, DENSE, name="rte")
    monkeypatch.undo()
    assert_same(model, before)
