"""Adapters keep working when something replaces the model's Parameter objects or copies the model.

Surgery holds no Parameter across calls (tensors are found by name when used: `surgery.substitute`,
`surgery.base_copies`), so every way of swapping the tensors a model holds — transformers' and
PEFT's low-memory loading (``load_state_dict(..., assign=True)``), conversion with
overwrite-on-conversion, a build on the meta device then ``to_empty`` + ``load_state_dict``,
``copy.deepcopy``, pickling — must give a model that computes, *and trains*, exactly what a
normally built model with the same values does. Each test compares the outputs and the gradients of
every trained tensor with such a reference, for two adapters that both train their own layer norms.
"""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

import surgery
from conftest import tiny_config, tiny_model
from transformers import T5ForConditionalGeneration

SMALL = {"options": {"n": 2}}   # compacter++ with n = 2 divides the tiny model's sizes


def two_adapter_model(seed: int = 0, build=None) -> torch.nn.Module:
    """'default' (compacter++) and 'b' (a dense adapter), both training their own layer norms."""
    model = tiny_model() if build is None else build()
    surgery.apply(model, "compacter++", overrides={"options.n": 2})
    surgery.apply(model, {"method": "adapter", "sites": ["after_ffn"], "options": {"bottleneck": 4},
                          "train": ["layer_norms"]}, name="b")
    return model


def trained(seed: int = 1) -> torch.nn.Module:
    """A two-adapter model whose every adapter tensor (layer-norm copies included) moved away from its init."""
    model = two_adapter_model()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.startswith("surgery.") or ".spliced." in name:
                parameter.add_(torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype) * 0.1)
    return model.eval()


def outputs_and_gradients(model: torch.nn.Module, batch: dict, adapter) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    surgery.set_active(model, adapter)
    model.zero_grad(set_to_none=True)
    output = model(**batch)
    output.loss.backward()
    # (with both in effect, the last one's layer-norm copies are read and the first one's get no gradient)
    gradients = {n: torch.zeros_like(p) if p.grad is None else p.grad.detach().clone()
                 for n, p in model.named_parameters() if p.requires_grad}
    return output.logits.detach(), gradients


def assert_same_model(model: torch.nn.Module, reference: torch.nn.Module, batch: dict, exact: bool = True) -> None:
    """Same logits and the same gradient for every trained tensor, for each adapter and for the base."""
    for adapter in ("default", "b", ["default", "b"]):
        logits, gradients = outputs_and_gradients(model, batch, adapter)
        expected_logits, expected_gradients = outputs_and_gradients(reference, batch, adapter)
        compare = torch.equal if exact else (lambda a, b: torch.allclose(a, b, atol=1e-6, rtol=1e-5))
        assert compare(logits, expected_logits), adapter
        assert gradients.keys() == expected_gradients.keys(), adapter
        last = adapter if isinstance(adapter, str) else adapter[-1]
        norm_copies = [n for n in gradients if n.startswith(f"surgery.adapters.{last}.base.")]
        assert norm_copies and all(gradients[n].abs().sum() > 0 for n in norm_copies), "layer-norm copies get no gradient"
        for name, gradient in gradients.items():
            assert compare(gradient, expected_gradients[name]), (adapter, name)
    with torch.no_grad(), surgery.disabled(model), surgery.disabled(reference):
        assert torch.equal(model(**batch).logits, reference(**batch).logits)


def test_load_state_dict_with_assign_keeps_every_adapter(batch):
    reference = trained()
    model = two_adapter_model()
    model.load_state_dict({n: t.clone() for n, t in reference.state_dict().items()}, assign=True)
    assert_same_model(model.eval(), reference, batch)


def test_conversion_that_overwrites_parameters_keeps_every_adapter(batch):
    reference = trained()
    converted = copy.deepcopy(reference)
    previous = torch.__future__.get_overwrite_module_params_on_conversion()
    torch.__future__.set_overwrite_module_params_on_conversion(True)
    try:
        converted.to(torch.float64)
        reference64 = two_adapter_model().to(torch.float64)   # built normally in float64, given the same values
    finally:
        torch.__future__.set_overwrite_module_params_on_conversion(previous)
    reference64.load_state_dict({n: t.to(torch.float64) for n, t in reference.state_dict().items()})
    assert_same_model(converted.eval(), reference64.eval(), batch)


def test_meta_build_then_to_empty_and_load_state_dict(batch):
    reference = trained()

    def on_meta() -> torch.nn.Module:
        with torch.device("meta"):
            model = T5ForConditionalGeneration(tiny_config())
        return model

    model = two_adapter_model(build=on_meta)
    assert next(model.parameters()).is_meta
    model.to_empty(device="cpu")
    model.load_state_dict(reference.state_dict())
    assert_same_model(model.eval(), reference, batch)


def test_deepcopy_is_independent_and_complete(batch):
    reference = trained()
    clone = copy.deepcopy(reference)
    assert_same_model(clone, reference, batch)
    with torch.no_grad():   # the copy's own layer-norm copy, not the original's
        clone.surgery.adapters.b.base["encoder-final_layer_norm-weight"].mul_(3.0)
    surgery.remove(clone, "default")
    assert surgery.list_adapters(reference) == ["default", "b"] and surgery.list_adapters(clone) == ["b"]
    surgery.set_active(reference, "b")
    with torch.no_grad():
        assert not torch.equal(clone(**batch).logits, reference(**batch).logits)
    assert_same_model(reference, trained(), batch)


def test_pickle_round_trip(batch):
    reference = trained()
    again = pickle.loads(pickle.dumps(reference))
    assert_same_model(again, reference, batch)


def test_save_pretrained_then_from_pretrained_loses_nothing(tmp_path, batch):
    base = tiny_model()
    model = copy.deepcopy(base)
    surgery.apply(model, "compacter++", overrides={"options.n": 2})
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.requires_grad:
                parameter.add_(0.1)
    model.save_pretrained(tmp_path / "saved")
    # (eager attention, as the models built here use: from_pretrained would pick sdpa, equal up to rounding)
    again = surgery.from_pretrained(tmp_path / "saved", attn_implementation="eager").eval()
    with torch.no_grad():
        assert torch.equal(again(**batch).logits, model.eval()(**batch).logits)
        with surgery.disabled(again):
            assert torch.equal(again(**batch).logits, base(**batch).logits)
    surgery.remove(again, "default")
    expected = base.state_dict()
    assert again.state_dict().keys() == expected.keys()
    assert all(torch.equal(t, expected[n]) for n, t in again.state_dict().items())


@pytest.mark.parametrize("adapter", ["default", "b"])
def test_removing_an_adapter_gives_back_the_base_bit_for_bit(adapter):
    base = tiny_model()
    model = trained()
    surgery.remove(model, adapter)
    surgery.remove(model, surgery.list_adapters(model)[0])
    expected = base.state_dict()
    assert model.state_dict().keys() == expected.keys()
    assert all(torch.equal(t, expected[n]) for n, t in model.state_dict().items())


def test_a_saved_folder_whose_config_names_other_adapters_is_refused(tmp_path):
    import json

    model = tiny_model()
    surgery.apply(model, {"method": "adapter", "sites": ["after_ffn"], "options": {"bottleneck": 4}})
    model.save_pretrained(tmp_path / "saved")
    config_path = tmp_path / "saved" / "config.json"
    config = json.loads(config_path.read_text())
    config["t5_surgery"]["adapters"][0]["recipe"]["options"]["bottleneck"] = 8   # edited by hand: another shape
    config_path.write_text(json.dumps(config))
    with pytest.raises(surgery.CheckpointError, match="other shape"):
        surgery.from_pretrained(tmp_path / "saved")
    config["t5_surgery"] = {"format": 99}
    config_path.write_text(json.dumps(config))
    with pytest.raises(surgery.CheckpointError, match="'t5_surgery' is not a record this version can read"):
        surgery.from_pretrained(tmp_path / "saved")
