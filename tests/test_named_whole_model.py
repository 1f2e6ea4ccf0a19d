"""Whole-model methods beside other adapters, decided per method.

* prompt tuning, Intrinsic-SAID, BitFit: coexist. Their hooks act only while their adapter is in
  effect, so switching to one reproduces it alone exactly and `disabled` gives the base; BitFit
  also takes part in mixed batches (a bias per row); prompt tuning and SAID are refused there with
  the reason; two prompts cannot be in effect at once.
* full fine-tuning: refused at plan time beside any other adapter, in either order (it trains the
  base weights every other adapter reads), and `disabled` / `remove` are refused (no base kept).
"""

from __future__ import annotations

import copy

import pytest
import torch

import surgery
from conftest import tiny_model
from surgery import RecipeError, SurgeryError
from test_named_adapters import COMPACTER_PP, alone, logits

PROMPT = {"name": "prompt", "method": "prompt_tuning", "options": {"length": 3, "init": "vocab", "vocab_high": 90}}
SAID = {"name": "said", "method": "intrinsic_said", "options": {"dimension": 300}}
BITFIT = "bitfit"


def beside_compacter(recipe, tmp_path):
    """(model: default compacter++ + `recipe` as 'other', compacter++ alone, recipe alone, base)."""
    base, a, b = tiny_model(), alone(COMPACTER_PP, 1), alone(recipe, 2)
    model = copy.deepcopy(base)
    surgery.load_adapter(model, surgery.save_adapter(a, tmp_path / "a"))
    surgery.load_adapter(model, surgery.save_adapter(b, tmp_path / "b"), name="other")
    return model.eval(), a, b, base


@pytest.mark.parametrize("recipe", [PROMPT, SAID, BITFIT], ids=["prompt-tuning", "intrinsic-said", "bitfit"])
def test_whole_model_methods_coexist_switching_and_disabled_are_exact(recipe, tmp_path, batch):
    model, a, b, base = beside_compacter(recipe, tmp_path)
    assert torch.equal(logits(model, batch), logits(b, batch))
    surgery.set_active(model, "default")
    assert torch.equal(logits(model, batch), logits(a, batch))
    with surgery.disabled(model):
        assert torch.equal(logits(model, batch), logits(base, batch))
    surgery.set_active(model, "other")
    with torch.no_grad():
        generated = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], num_beams=2,
                                   max_new_tokens=5)
        assert torch.equal(generated, b.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                                 num_beams=2, max_new_tokens=5))
    surgery.remove(model, "other")
    assert torch.equal(logits(model, batch), logits(a, batch))


def test_the_default_applied_after_a_whole_model_method_is_still_exact(tmp_path, batch):
    base, said, compacter = tiny_model(), alone(SAID, 3), alone(COMPACTER_PP, 4)
    model = copy.deepcopy(base)
    surgery.load_adapter(model, surgery.save_adapter(said, tmp_path / "s"))
    surgery.load_adapter(model, surgery.save_adapter(compacter, tmp_path / "c"), name="cpp")
    names = model.surgery.adapters.default.intrinsic.tensor_names
    assert not any(surgery.naming.is_added(n) for n in names)      # SAID moves base tensors only
    assert torch.equal(logits(model, batch), logits(compacter, batch))
    surgery.set_active(model, "default")
    assert torch.equal(logits(model, batch), logits(said, batch))


def test_said_reads_the_base_layer_norms_not_those_the_default_trained(tmp_path, batch):
    model, _, b, base = beside_compacter(SAID, tmp_path)
    trained = model.surgery.adapters.default.base["encoder-final_layer_norm-weight"]   # the default's own copy
    assert not torch.equal(trained, base.encoder.final_layer_norm.weight)
    assert torch.equal(model.encoder.final_layer_norm.weight, base.encoder.final_layer_norm.weight)   # never written
    assert torch.equal(logits(model, batch), logits(b, batch))     # b: SAID on the untouched base


def test_bitfit_gives_no_bias_to_other_adapters_modules(tmp_path):
    model, _, _, _ = beside_compacter(BITFIT, tmp_path)
    biased = [n for n, _ in model.named_parameters() if "surgery_bias" in n]
    assert biased and not [n for n in biased if ".spliced." in n]
    assert all(n.endswith("surgery_bias__other") for n in biased)


def test_bitfit_takes_part_in_a_mixed_batch(tmp_path, batch):
    model, a, b, base = beside_compacter(BITFIT, tmp_path)
    with surgery.mixed_batch(model, ["other", "default", None]):
        mixed = logits(model, batch)
    for row, reference in enumerate((b, a, base)):
        torch.testing.assert_close(mixed[row], logits(reference, batch)[row], rtol=0, atol=1e-5)


@pytest.mark.parametrize("recipe, reason", [
    (PROMPT, "prepends its 3 vectors to every example's input"),
    (SAID, "moves every weight of the model"),
])
def test_prompt_tuning_and_said_are_refused_in_a_mixed_batch_with_the_reason(recipe, reason, tmp_path, batch):
    model, _, b, _ = beside_compacter(recipe, tmp_path)
    with pytest.raises(SurgeryError, match=f"adapter 'other' .* cannot take part in a mixed batch: .*{reason}"):
        with surgery.mixed_batch(model, ["other", "default", None]):
            logits(model, batch)
    assert torch.equal(logits(model, batch), logits(b, batch))      # nothing left behind


def test_an_adapter_training_its_own_output_layer_is_refused_in_a_mixed_batch(batch):
    model = tiny_model()
    surgery.apply(model, COMPACTER_PP)
    surgery.apply(model, {**COMPACTER_PP, "train": ["layer_norms", "output_layer"]}, name="t7")
    with pytest.raises(SurgeryError, match="trains its own shared.weight \\(not a layer norm\\)"):
        with surgery.mixed_batch(model, ["t7", None, None]):
            logits(model, batch)


def test_two_prompts_cannot_be_in_effect_together():
    model = tiny_model()
    surgery.apply(model, PROMPT)
    surgery.apply(model, PROMPT, name="second")
    with pytest.raises(SurgeryError, match="one can be in effect at a time"):
        surgery.set_active(model, ["default", "second"])
    assert surgery.active_adapters(model) == ["second"]


def test_full_fine_tuning_cannot_sit_beside_another_adapter_in_either_order():
    model = tiny_model()
    surgery.apply(model, COMPACTER_PP)
    with pytest.raises(RecipeError, match="recipe key 'method': 'full-finetune' trains every base weight, which the model's "
                                          "other adapters \\(default\\) read"):
        surgery.plan(model, "full-finetune", name="ft")
    with pytest.raises(RecipeError, match="recipe key 'train': 'all' trains every base weight"):
        surgery.plan(model, {**COMPACTER_PP, "train": ["all"]}, name="all")
    full = tiny_model()
    surgery.apply(full, "full-finetune")
    with pytest.raises(SurgeryError, match="adapter 'default' \\(recipe 'full-finetune'\\) trains the base weights themselves"):
        surgery.plan(full, COMPACTER_PP, name="cpp")
    with pytest.raises(SurgeryError, match="cannot disable the adapters: .* kept no copy of them"):
        with surgery.disabled(full):
            pass
    with pytest.raises(SurgeryError, match="cannot remove adapter 'default'"):
        surgery.remove(full, "default")
    assert surgery.list_adapters(full) == ["default"]
