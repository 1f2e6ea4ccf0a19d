"""BitFit: zero biases re-introduced where T5 has none; only they train."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import surgery
from conftest import losses_on_a_fixed_mapping, tiny_model
from runners.finetune.protocol import paper_defaults
from runners.tasks import get_task
from surgery.errors import RecipeError

VARIANTS = ["v1.0", "v1.1"]


def expected_bias_sites(model: nn.Module) -> dict[str, int]:
    """module name → bias size, from names and shapes alone (independent of the method's module walk)."""
    sites = {}
    for name, module in model.named_modules():
        in_block = ".block." in name
        if in_block and isinstance(module, nn.Linear):
            sites[name] = module.weight.shape[0]
        elif in_block and name.endswith("layer_norm"):
            sites[name] = module.weight.shape[0]
    sites["lm_head"] = model.config.vocab_size
    return sites


@pytest.mark.parametrize("variant", VARIANTS)
def test_biases_go_exactly_where_the_paper_reintroduces_them(variant):
    model = tiny_model(variant)
    report = surgery.report(surgery.apply(model, "bitfit"))
    expected = {f"{name}.surgery_bias__default": size for name, size in expected_bias_sites(model).items()}
    trainable = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == expected
    assert report.groups == {"biases": sum(expected.values())}
    # Gated FFN: wi_0 and wi_1 both get a bias; the final stack layer norms get none.
    if variant != "v1.0":
        assert "encoder.block.0.layer.1.DenseReluDense.wi_0.surgery_bias__default" in trainable
        assert "encoder.block.0.layer.1.DenseReluDense.wi_1.surgery_bias__default" in trainable
    assert not any("final_layer_norm" in n for n in trainable)
    assert all(not p.requires_grad for n, p in model.named_parameters() if n.endswith("layer_norm.weight"))


@pytest.mark.parametrize("variant", VARIANTS)
def test_logits_are_unchanged_at_init(variant, batch):
    base, model = tiny_model(variant), tiny_model(variant)
    surgery.apply(model, "bitfit")
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, base(**batch).logits)


def test_linear_bias_acts_like_a_linear_layer_bias():
    model = tiny_model()
    surgery.apply(model, "bitfit")
    q = model.decoder.block[1].layer[1].EncDecAttention.q
    with torch.no_grad():
        q.surgery_bias__default.normal_()
        x = torch.randn(2, 3, q.in_features)
        assert torch.allclose(q(x), F.linear(x, q.weight, q.surgery_bias__default), atol=1e-6)


def test_layer_norm_bias_is_added_after_the_scale():
    model = tiny_model()
    surgery.apply(model, "bitfit")
    norm = model.encoder.block[0].layer[1].layer_norm
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.surgery_bias__default.normal_()
        x = torch.randn(2, 3, norm.weight.shape[0])
        rms = torch.sqrt(x.pow(2).mean(-1, keepdim=True) + norm.variance_epsilon)
        assert torch.allclose(norm(x), norm.weight * (x / rms) + norm.surgery_bias__default, atol=1e-5)


def test_ffn_output_dtype_cast_still_works():
    # T5 casts the FFN hidden state to wo.weight's dtype (wo kept in float32 for 8-bit/bf16 runs):
    # the bias must follow wo's dtype, not the model's.
    model = tiny_model("v1.1").to(torch.bfloat16)
    for block in list(model.encoder.block) + list(model.decoder.block):
        block.layer[-1].DenseReluDense.wo.float()
    surgery.apply(model, "bitfit")
    wo = model.encoder.block[0].layer[1].DenseReluDense.wo
    assert wo.surgery_bias__default.dtype == torch.float32
    assert model.encoder.block[0].layer[0].SelfAttention.q.surgery_bias__default.dtype == torch.bfloat16
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        logits = model(input_ids=ids, decoder_input_ids=torch.zeros_like(ids)).logits
    assert torch.isfinite(logits.float()).all()


def test_one_step_changes_exactly_the_biases(batch):
    model = tiny_model("v1.1").train()
    surgery.apply(model, "bitfit")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model(**batch).loss.backward()
    for n, p in model.named_parameters():
        assert (p.grad is not None and p.grad.abs().sum() > 0) == (n in trainable), n
    optimizer.step()
    assert {n for n, p in model.named_parameters() if not torch.equal(p, before[n])} == trainable


def test_learns_a_fixed_mapping():
    # BitFit's recipe rate (3e-4) is tuned for T5-base over thousands of steps; on this 30-step toy
    # we state 1e-2. Requirement: final loss < 0.7 × initial.
    torch.manual_seed(0)
    model = tiny_model(d_model=32, d_kv=8, d_ff=64).train()
    surgery.apply(model, "bitfit")
    losses = losses_on_a_fixed_mapping(model, 1e-2, 30)
    assert losses[-1] < 0.7 * losses[0], losses


@pytest.mark.parametrize("variant", VARIANTS)
def test_adapter_checkpoint_round_trip(variant, batch, tmp_path):
    model = tiny_model(variant)
    surgery.apply(model, "bitfit")
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.normal_()
    folder = surgery.save_adapter(model, tmp_path / "bitfit")
    fresh = tiny_model(variant)
    surgery.load_adapter(fresh, folder)
    with torch.no_grad():
        assert torch.equal(fresh(**batch).logits, model(**batch).logits)
        assert not torch.equal(fresh(**batch).logits, tiny_model(variant)(**batch).logits)


def test_unknown_option_is_a_plan_time_error():
    with pytest.raises(RecipeError, match=r"options\.bias_init.*not an option"):
        surgery.plan(tiny_model(), {"method": "bitfit", "options": {"bias_init": 0.0}})


def test_recipe_defaults():
    plan = surgery.plan(tiny_model(), "bitfit")
    assert paper_defaults(get_task("rte"), "bitfit")["learning_rate"] == 3e-4  # appendix Table 4 (T5-base, GLUE)
    assert plan.splices == []
