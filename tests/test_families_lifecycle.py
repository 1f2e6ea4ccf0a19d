"""Fold, named adapters, mixed batches, save_pretrained / from_pretrained and the Trainer beyond T5.

The tiny configs and helpers are those of `test_families_beyond_t5` (one block per stack, hidden 64,
vocabulary 64). References are independent of the mechanism under test: the unfolded trained model
for `fold`, a fresh copy of the base holding only one adapter for named adapters and mixed batches,
the model that was saved for save/load, the weights before training for the Trainer.

Tolerances: folding and mixed batches 1e-5 absolute on logits of order 1 (float32): BitFit's folded
biases are added inside ``addmm`` and mixed batches run each adapter on a gathered sub-batch, which
round differently in the last bits; everything else is exact.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import transformers as tf
from torch import nn
from torch.utils.data import Dataset

import surgery
from test_families_beyond_t5 import CONFIGS, LM_CLASS, inputs, logits, make, tiny_recipe

MAIN = ["llama", "gpt2", "bart", "bert"]  # one of each kind of block; the slower tests run on these only
FAMILIES = sorted(CONFIGS)  # Qwen2, Mistral, mBART and RoBERTa too where a test is cheap
COMPACTER_PP = tiny_recipe("compacter++")


def train_step(model: nn.Module, seed: int = 0) -> None:
    """One Adam step on a loss of the logits (Adam moves every entry with a nonzero gradient by ~lr)."""
    model.train()
    torch.manual_seed(seed)
    model(**inputs(model)).logits.float().pow(2).mean().backward()
    torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2).step()
    model.zero_grad(set_to_none=True)
    model.eval()


def surgery_free(model: nn.Module, base: nn.Module) -> bool:
    """No surgery state, no hooks, the base's module types and tensor names (plus native biases BitFit gave
    layers that had none)."""
    added = set(model.state_dict()) - set(base.state_dict())
    return (not hasattr(model, "surgery")
            and [type(m) for m in model.modules()] == [type(m) for m in base.modules()]
            and all(len(m._forward_hooks) == len(m._forward_pre_hooks) == 0 for m in model.modules())
            and set(base.state_dict()) <= set(model.state_dict())
            and all(n.endswith(".bias") and base.get_submodule(n[:-5]).bias is None for n in added))


# 1. fold

FOLDING = {"bitfit": "bitfit", "intrinsic-said": {"method": "intrinsic_said", "options": {"dimension": 500}}}


@pytest.mark.parametrize("recipe", sorted(FOLDING))
@pytest.mark.parametrize("family", FAMILIES)
def test_a_trained_foldable_recipe_folds_into_the_base_with_the_same_logits(family, recipe):
    base = make(family, LM_CLASS[family])
    model = copy.deepcopy(base)
    surgery.apply(model, FOLDING[recipe])
    train_step(model)
    batch = inputs(base)
    before = logits(model, batch)
    assert (before - logits(base, batch)).abs().max() > 1e-4  # the step did move the function
    surgery.fold(model)
    assert surgery_free(model, base)
    torch.testing.assert_close(logits(model, batch), before, rtol=0, atol=1e-5)


@pytest.mark.parametrize("family", ["bert", "llama"])
def test_folded_bitfit_saves_as_a_plain_checkpoint_where_the_base_classes_hold_every_bias(family, tmp_path):
    """BERT has a bias wherever BitFit trains one: transformers' own classes load the folded model back.
    Llama has none in its projections: a plain checkpoint would drop them, so saving is refused."""
    base = make(family, LM_CLASS[family])
    model = copy.deepcopy(base)
    surgery.apply(model, "bitfit")
    train_step(model)
    surgery.fold(model)
    batch = inputs(base)
    if family == "llama":
        with pytest.raises(surgery.SurgeryError, match="from_pretrained would drop .* non-zero bias tensors"):
            model.save_pretrained(tmp_path)
        assert not any(tmp_path.iterdir())
        return
    model.save_pretrained(tmp_path)
    again = getattr(tf, LM_CLASS[family]).from_pretrained(tmp_path).eval()
    assert torch.equal(logits(again, batch), logits(model, batch))
    assert (logits(again, batch) - logits(base, batch)).abs().max() > 1e-4


@pytest.mark.parametrize("family", MAIN)
def test_a_recipe_that_cannot_fold_is_refused_and_the_model_is_unchanged(family):
    model = make(family, LM_CLASS[family])
    surgery.apply(model, COMPACTER_PP)
    train_step(model)
    batch = inputs(model)
    before = logits(model, batch)
    with pytest.raises(surgery.SurgeryError, match="cannot fold adapter 'default'"):
        surgery.fold(model)
    assert hasattr(model, "surgery") and torch.equal(logits(model, batch), before)


# 2. named adapters and mixed batches

def two_adapters(family: str, tmp_path: Path) -> tuple[nn.Module, dict[str, nn.Module], nn.Module]:
    """(base with compacter++ "a" and "b", each given its own training step; each alone on a fresh base; the base)."""
    base = make(family, LM_CLASS[family])
    model = copy.deepcopy(base)
    for seed, name in enumerate(("a", "b")):
        torch.manual_seed(10 + seed)
        surgery.apply(model, COMPACTER_PP, name=name)
    for seed, name in enumerate(("a", "b")):
        surgery.set_active(model, name)
        train_step(model, seed)
    alone = {}
    for name in ("a", "b"):
        alone[name] = copy.deepcopy(base)
        surgery.load_adapter(alone[name], surgery.save_adapter(model, tmp_path / name, name=name))
        alone[name].eval()
    return model, alone, base


@pytest.mark.parametrize("family", FAMILIES)
def test_named_adapters_switch_and_mix_in_one_batch_as_each_alone(family, tmp_path):
    model, alone, base = two_adapters(family, tmp_path)
    batch = inputs(base)
    expected = {name: logits(alone[name], batch) for name in alone}
    assert (expected["a"] - expected["b"]).abs().max() > 1e-4  # the two adapters do differ
    for name in ("a", "b", "a"):
        surgery.set_active(model, name)
        assert torch.equal(logits(model, batch), expected[name]), name
    with surgery.mixed_batch(model, ["b", "a"]):
        mixed = logits(model, batch)
    torch.testing.assert_close(mixed[0], expected["b"][0], rtol=0, atol=1e-5)
    torch.testing.assert_close(mixed[1], expected["a"][1], rtol=0, atol=1e-5)
    with surgery.mixed_batch(model, [None, "b"]):
        mixed = logits(model, batch)
    torch.testing.assert_close(mixed[0], logits(base, batch)[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(mixed[1], expected["b"][1], rtol=0, atol=1e-5)


@pytest.mark.parametrize("family", ["llama", "gpt2", "bart"])
def test_greedy_generate_in_a_mixed_batch_equals_each_adapter_alone(family, tmp_path):
    model, alone, base = two_adapters(family, tmp_path)
    batch = inputs(base)
    prompt = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    options = dict(max_new_tokens=5, do_sample=False, num_beams=1, use_cache=True)
    with torch.no_grad(), surgery.mixed_batch(model, ["a", "b"]):
        mixed = model.generate(**prompt, **options)
    with torch.no_grad():
        per = {name: alone[name].generate(**prompt, **options) for name in alone}
    assert torch.equal(mixed[0, : per["a"].shape[1]], per["a"][0])
    assert torch.equal(mixed[1, : per["b"].shape[1]], per["b"][1])


# 3. save_pretrained / from_pretrained, and the fingerprint

@pytest.mark.parametrize("family,save", [(f, "transformers") for f in FAMILIES] + [(f, "surgery") for f in MAIN])
def test_save_pretrained_then_from_pretrained_gives_the_same_logits(family, save, tmp_path):
    model = make(family, LM_CLASS[family])
    surgery.apply(model, COMPACTER_PP)
    train_step(model)
    if save == "transformers":
        model.save_pretrained(tmp_path)
    else:
        surgery.save_pretrained(model, tmp_path)
    again = surgery.from_pretrained(tmp_path).eval()
    assert type(again) is type(model) and surgery.list_adapters(again) == ["default"]
    batch = inputs(model)
    assert torch.equal(logits(again, batch), logits(model, batch))


@pytest.mark.parametrize("family,other", [("llama", "gpt2"), ("gpt2", "llama"), ("bart", "bert"), ("bert", "roberta")])
def test_an_adapter_is_refused_on_a_base_of_another_family_or_config(family, other, tmp_path):
    model = make(family, LM_CLASS[family])
    surgery.apply(model, "adapter")
    folder = surgery.save_adapter(model, tmp_path)
    for target in (make(other, LM_CLASS[other]), make(family, LM_CLASS[family], blocks=2)):
        with pytest.raises(surgery.CheckpointError, match="another base model"):
            surgery.load_adapter(target, folder)
        assert not hasattr(target, "surgery")


# 4. the Trainer

class Examples(Dataset):
    """Six rows of token ids (3..63, so no pad id 0 and no BART <eos>): labels the ids themselves."""

    def __init__(self, encoder_decoder: bool):
        generator = torch.Generator().manual_seed(0)
        self.ids = torch.randint(3, 64, (6, 6), generator=generator)
        self.ids[:, -1] = 2
        self.encoder_decoder = encoder_decoder

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        labels = self.ids[index, :4] if self.encoder_decoder else self.ids[index]
        return {"input_ids": self.ids[index], "labels": labels}


def trainer_arguments(out: Path) -> tf.TrainingArguments:
    return tf.TrainingArguments(output_dir=str(out), max_steps=2, per_device_train_batch_size=3, learning_rate=1e-2,
                                report_to=[], save_strategy="steps", save_steps=2, logging_strategy="no", use_cpu=True,
                                dataloader_num_workers=0, seed=0, data_seed=0)


@pytest.mark.parametrize("family", MAIN)
def test_the_trainer_moves_only_the_recipes_tensors_and_its_checkpoint_reloads(family, tmp_path):
    model = make(family, LM_CLASS[family])
    surgery.apply(model, COMPACTER_PP)
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    before = {n: t.clone() for n, t in model.state_dict().items()}
    dataset = Examples(model.config.is_encoder_decoder)
    tf.Trainer(model=model, args=trainer_arguments(tmp_path), train_dataset=dataset).train()
    after = model.state_dict()
    changed = {n for n in after if not torch.equal(after[n], before[n])}
    assert changed and changed <= trained
    model.eval()
    batch = inputs(model)
    again = surgery.from_pretrained(tmp_path / "checkpoint-2").eval()
    assert torch.equal(logits(again, batch), logits(model, batch))
