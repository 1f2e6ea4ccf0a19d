"""Folding: Intrinsic-SAID and BitFit merged into the base weights; the θ cache of Intrinsic-SAID; refusals.

Tolerances:
* Intrinsic-SAID folded vs unfolded: 0 (bit for bit): the folded tensor is computed by the very
  function the hooks call, and the model then runs the same operations on the same values.
* BitFit folded vs unfolded: 1e-5 absolute plus 1e-5 relative, on logits of order 1 (float32): the biases move into
  ``addmm`` and a layer norm's bias becomes W·b in the next projection's bias, which rounds
  differently from adding b before the projection.
"""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import T5ForConditionalGeneration

import methods.fastfood
import surgery
from conftest import tiny_model
from surgery import SurgeryError
from test_named_adapters import COMPACTER_PP, logits

SAID = {"method": "intrinsic_said", "options": {"dimension": 400}}


def trained_said(variant: str, output_layer: str = "frozen", scale: str = "norm_preserving") -> torch.nn.Module:
    model = tiny_model(variant)
    surgery.apply(model, {**SAID, "options": {**SAID["options"], "output_layer": output_layer, "projection_scale": scale}})
    with torch.no_grad():
        model.surgery.adapters.default.intrinsic.z.normal_(std=0.3)
        model.surgery.adapters.default.intrinsic.scales.uniform_(0.5, 2.0)
    return model.eval()


@pytest.mark.parametrize("output_layer, scale", [("frozen", "norm_preserving"), ("in_subspace", "norm_preserving"),
                                                  ("frozen", "unit_blocks")])
def test_folded_said_equals_unfolded_bit_for_bit_and_is_a_plain_checkpoint(variant, output_layer, scale, batch, tmp_path):
    model = trained_said(variant, output_layer, scale)
    base = tiny_model(variant)
    before = logits(model, batch)
    with torch.no_grad():
        generated = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], max_new_tokens=6)
    surgery.fold(model)
    assert not hasattr(model, "surgery") and not hasattr(model, "surgery_fastfood__default")
    assert all(len(m._forward_pre_hooks) == len(m._forward_hooks) == 0 for m in model.modules())
    assert torch.equal(logits(model, batch), before)
    with torch.no_grad():
        assert torch.equal(model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                          max_new_tokens=6), generated)
    # Every tensor moved but a frozen output layer; a tied one frozen becomes a tensor of its own, θ₀.
    tied_frozen = variant == "v1.0" and output_layer == "frozen"
    assert (model.lm_head.weight is model.shared.weight) == (variant == "v1.0" and output_layer == "in_subspace")
    if output_layer == "frozen":
        assert torch.equal(model.lm_head.weight, base.lm_head.weight)
    assert not torch.equal(model.shared.weight, base.shared.weight)
    model.save_pretrained(tmp_path / "plain")                         # transformers' own save: no adapter files
    assert not (tmp_path / "plain" / "t5_surgery_adapter.json").exists()
    again = T5ForConditionalGeneration.from_pretrained(tmp_path / "plain", attn_implementation="eager").eval()
    assert (again.lm_head.weight is again.shared.weight) == (not tied_frozen and variant == "v1.0")
    assert torch.equal(logits(again, batch), before)
    assert set(again.state_dict()) == set(base.state_dict())


def test_what_apply_adds_follows_the_models_mode():
    model = tiny_model()                      # in eval mode
    surgery.apply(model, SAID)
    assert not model.surgery.adapters.default.intrinsic.training and not model.surgery.training
    model.train()
    surgery.apply(model, COMPACTER_PP, name="cpp")
    assert model.encoder.block[0].spliced["cpp"]["after_ffn"].training


def test_said_caches_theta_in_eval_without_gradients_and_recomputes_when_z_changes(monkeypatch, batch):
    model = trained_said("v1.0")
    calls = {"n": 0}
    real = methods.fastfood.Fastfood.forward

    def counting(self, *args):  # z, and the scale and base θ is computed from
        calls["n"] += 1
        return real(self, *args)

    monkeypatch.setattr(methods.fastfood.Fastfood, "forward", counting)
    tensors = len(model.surgery.adapters.default.intrinsic.tensor_names)
    first = logits(model, batch)
    assert calls["n"] == tensors                                       # once per tensor (tied: once)
    again = logits(model, batch)
    assert calls["n"] == tensors and torch.equal(again, first)         # the cache, not a recomputation
    with torch.no_grad():
        model.surgery.adapters.default.intrinsic.z.add_(0.1)
    moved = logits(model, batch)
    assert calls["n"] == 2 * tensors and not torch.equal(moved, first)
    said = next(h.substitution for m in model.modules() for h in m._forward_pre_hooks.values()
                if hasattr(getattr(h, "substitution", None), "cache"))
    model.train()
    model(**batch).loss.backward()                                     # training: recomputed, gradients flow
    assert model.surgery.adapters.default.intrinsic.z.grad is not None and not said.cache
    uncached = copy.deepcopy(model).eval()
    with torch.enable_grad():                                          # eval but z needs gradients: no cache
        reference = uncached(**batch).logits.detach()
    torch.testing.assert_close(logits(model.eval(), batch), reference, rtol=0, atol=0)


def random_bitfit(variant: str) -> torch.nn.Module:
    model = tiny_model(variant)
    surgery.apply(model, "bitfit")
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.requires_grad:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
    return model.eval()


def test_folded_bitfit_equals_unfolded_within_float_rounding_with_no_hooks(variant, batch):
    model = random_bitfit(variant)
    before = logits(model, batch)
    surgery.fold(model)
    assert not hasattr(model, "surgery") and not any("surgery" in n for n, _ in model.named_parameters())
    assert all(len(m._forward_hooks) == 0 for m in model.modules())
    biases = {n for n, _ in model.named_parameters() if n.endswith(".bias")}
    assert "encoder.block.0.layer.0.SelfAttention.q.bias" in biases and "lm_head.bias" in biases
    torch.testing.assert_close(logits(model, batch), before, rtol=1e-5, atol=1e-5)


def test_a_layer_norm_bias_moves_into_the_projections_that_read_it(batch):
    model = tiny_model()
    surgery.apply(model, "bitfit")
    norm = model.encoder.block[0].layer[1].layer_norm                 # the FFN's
    with torch.no_grad():
        norm.surgery_bias__default.normal_()
    wi = model.encoder.block[0].layer[1].DenseReluDense.wi
    expected = wi.weight.detach() @ norm.surgery_bias__default.detach()         # W·b, by the formula
    surgery.fold(model)
    torch.testing.assert_close(wi.bias, expected, rtol=1e-6, atol=1e-6)
    assert torch.count_nonzero(model.encoder.block[0].layer[0].SelfAttention.q.bias) == 0


def test_a_plain_checkpoint_of_folded_bitfit_is_refused_naming_the_biases(tmp_path):
    model = random_bitfit("v1.0")
    surgery.fold(model)
    with pytest.raises(SurgeryError, match="T5's linear layers, layer norms and output layer\\) have no biases there, so "
                                           "from_pretrained would drop .* non-zero bias tensors \\(encoder.block.0"):
        model.save_pretrained(tmp_path / "plain")
    assert not (tmp_path / "plain").exists()


def test_folded_bitfit_with_only_key_biases_is_a_plain_checkpoint(tmp_path, batch):
    model = tiny_model()
    surgery.apply(model, "bitfit")
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(".k.surgery_bias__default"):
                parameter.normal_()
    before = logits(model.eval(), batch)
    surgery.fold(model)
    model.save_pretrained(tmp_path / "plain")
    again = T5ForConditionalGeneration.from_pretrained(tmp_path / "plain", attn_implementation="eager").eval()
    assert not any(n.endswith(".bias") for n, _ in again.named_parameters())
    torch.testing.assert_close(logits(again, batch), before, rtol=1e-5, atol=1e-5)   # the softmax ignores them


@pytest.mark.parametrize("recipe, reason", [
    (COMPACTER_PP, "computes x \\+ up\\(gelu_new\\(down\\(x\\)\\)\\) at each site: the activation between its "
                   "projections is not linear"),
    ({"method": "prompt_tuning", "options": {"length": 3}}, "they are extra input positions, not a change of any weight"),
])
def test_nonlinear_adapters_are_refused_with_the_reason(recipe, reason, batch):
    model = tiny_model()
    surgery.apply(model, recipe)
    before = logits(model, batch)
    with pytest.raises(SurgeryError, match=f"cannot fold adapter 'default' .*{reason}"):
        surgery.fold(model)
    assert torch.equal(logits(model, batch), before) and hasattr(model, "surgery")


def test_folding_one_of_several_adapters_is_refused():
    model = tiny_model()
    surgery.apply(model, SAID)
    surgery.apply(model, "bitfit", name="bf")
    with pytest.raises(SurgeryError, match="holds 2 adapters .* remove the others first"):
        surgery.fold(model)
    surgery.remove(model, "bf")
    surgery.fold(model)
    assert not hasattr(model, "surgery")


def test_full_fine_tuning_folds_into_itself(batch):
    model = tiny_model()
    surgery.apply(model, "full-finetune")
    with torch.no_grad():
        model.shared.weight.add_(0.1)
    before = logits(model, batch)
    surgery.fold(model)
    assert not hasattr(model, "surgery") and torch.equal(logits(model, batch), before)


def test_longt5_transient_global_layer_norm_biases_are_refused_and_nothing_changes(batch):
    from test_model_classes import make

    model = make("LongT5ForConditionalGeneration", encoder_attention_type="transient-global").eval()
    surgery.apply(model, "bitfit")
    with pytest.raises(SurgeryError, match="transient-global attention"):
        surgery.fold(model)
    assert hasattr(model, "surgery") and not any(n.endswith(".bias") for n, _ in model.named_parameters())
