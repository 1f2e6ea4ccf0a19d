"""Prompt tuning: the prompt reaches the encoder and the decoder's cross-attention on every path."""

from __future__ import annotations

import pytest
import torch

import surgery
from conftest import losses_on_a_fixed_mapping, tiny_model
from runners.finetune.protocol import paper_defaults
from runners.tasks import get_task
from surgery.errors import RecipeError

LENGTH = 4


def prompted(variant: str = "v1.0", init: str = "random", length: int = LENGTH, **options):
    model = tiny_model(variant)
    surgery.apply(model, {"method": "prompt_tuning", "options": {"length": length, "init": init, **options}})
    return model


def padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Three rows of lengths 7, 4 and 2, right-padded with id 0."""
    input_ids = torch.tensor([[11, 12, 13, 14, 15, 16, 17], [21, 22, 23, 24, 0, 0, 0], [31, 32, 0, 0, 0, 0, 0]])
    return input_ids, (input_ids != 0).long()


def test_forward_equals_the_base_model_fed_the_prompt_by_hand(variant):
    base = tiny_model(variant)
    model = prompted(variant)
    input_ids, mask = padded_batch()
    decoder_input_ids = torch.tensor([[0, 5, 6]] * 3)
    prompt = model.surgery.adapters.default.prompt.weight
    # Independent computation: embed, prepend the prompt, extend the mask by hand, run the untouched model.
    embeds = torch.cat([prompt.expand(3, -1, -1), base.shared(input_ids)], dim=1)
    extended = torch.cat([torch.ones(3, LENGTH, dtype=mask.dtype), mask], dim=1)
    with torch.no_grad():
        expected = base(inputs_embeds=embeds, attention_mask=extended, decoder_input_ids=decoder_input_ids).logits
        got = model(input_ids=input_ids, attention_mask=mask, decoder_input_ids=decoder_input_ids).logits
    assert torch.allclose(got, expected, atol=1e-6)


def test_encoder_output_is_input_length_plus_prompt_length():
    model = prompted()
    input_ids, mask = padded_batch()
    with torch.no_grad():
        assert model.get_encoder()(input_ids=input_ids, attention_mask=mask).last_hidden_state.shape[1] == 7 + LENGTH
        assert model.encoder(input_ids, mask).last_hidden_state.shape[1] == 7 + LENGTH  # positional call too


def test_decoder_and_cross_attention_see_the_extended_mask():
    model = prompted()
    seen = {}

    def capture_stack(module, args, kwargs):  # registered after the method's hook, so it sees its result
        seen["stack"] = kwargs["encoder_attention_mask"]

    def capture_cross_attention(module, args, kwargs):
        seen["cross"] = kwargs["attention_mask"]  # additive (B, 1, T_dec, T_enc) mask

    model.decoder.register_forward_pre_hook(capture_stack, with_kwargs=True)
    model.decoder.block[0].layer[1].register_forward_pre_hook(capture_cross_attention, with_kwargs=True)
    input_ids, mask = padded_batch()
    with torch.no_grad():
        model(input_ids=input_ids, attention_mask=mask, decoder_input_ids=torch.zeros(3, 2, dtype=torch.long))
    assert torch.equal(seen["stack"], torch.cat([torch.ones(3, LENGTH, dtype=mask.dtype), mask], dim=1))
    visible = seen["cross"][:, 0, 0, :] == 0
    assert visible.shape == (3, LENGTH + 7)
    assert visible[:, :LENGTH].all()
    assert torch.equal(visible[:, LENGTH:], mask.bool())


def test_padded_positions_do_not_leak_into_any_row():
    model = prompted()
    input_ids, mask = padded_batch()
    other_ids = torch.where(mask.bool(), input_ids, torch.full_like(input_ids, 50))
    decoder_input_ids = torch.tensor([[0, 7, 8]] * 3)
    with torch.no_grad():
        a = model(input_ids=input_ids, attention_mask=mask, decoder_input_ids=decoder_input_ids).logits
        b = model(input_ids=other_ids, attention_mask=mask, decoder_input_ids=decoder_input_ids).logits
    assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("num_beams", [1, 3])
def test_generate_on_a_padded_batch_matches_each_row_alone(num_beams):
    model = prompted("v1.1", init="vocab")
    encoder_lengths = []
    model.encoder.register_forward_hook(lambda m, a, out: encoder_lengths.append(out.last_hidden_state.shape[1]))
    input_ids, mask = padded_batch()
    # A random tiny T5 tends to repeat the start token (0); forbid it and repeats so the rows differ.
    settings = dict(max_new_tokens=6, num_beams=num_beams, do_sample=False, suppress_tokens=[0], no_repeat_ngram_size=1)
    with torch.no_grad():
        together = model.generate(input_ids=input_ids, attention_mask=mask, **settings)
        assert encoder_lengths == [7 + LENGTH]  # generate() ran the encoder once, through the prompt hook
        for row in range(3):
            length = int(mask[row].sum())
            alone = model.generate(input_ids=input_ids[row:row + 1, :length], **settings)[0]
            assert torch.equal(together[row, : len(alone)], alone), (row, together[row], alone)
            assert (together[row, len(alone):] == model.config.pad_token_id).all()
    assert len({tuple(r.tolist()) for r in together}) > 1  # the rows really differ


def test_vocab_init_copies_current_embedding_rows_of_ordinary_tokens():
    model = tiny_model()
    with torch.no_grad():  # stands in for loaded pretrained weights: row i is filled with i
        model.shared.weight.copy_(torch.arange(96.0).unsqueeze(1).expand(96, 64))
    surgery.apply(model, {"method": "prompt_tuning", "options": {"length": 10, "init": "vocab", "vocab_low": 3}})
    prompt = model.surgery.adapters.default.prompt.weight
    ids = prompt[:, 0].long().tolist()
    assert torch.equal(prompt, model.shared.weight[ids])
    assert len(set(ids)) == 10  # no repeats while the range allows it
    assert all(3 <= i < 96 for i in ids)  # vocab_high 5000 clipped to the vocabulary; no pad/eos/unk


def test_random_init_scale():
    model = prompted(length=100, init="random", random_distribution="normal", init_std=0.25)
    assert abs(model.surgery.adapters.default.prompt.weight.std().item() - 0.25) < 0.02


def test_the_whole_model_is_frozen_and_one_step_moves_only_the_prompt(batch):
    model = prompted("v1.1").train()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"surgery.adapters.default.prompt.weight"}  # layer norms frozen too (no copies)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model(**batch).loss.backward()
    assert all((p.grad is not None) == (n in trainable) for n, p in model.named_parameters())
    optimizer.step()
    assert {n for n, p in model.named_parameters() if not torch.equal(p, before[n])} == trainable


@pytest.mark.parametrize("recipe, learning_rate, steps, length", [
    ("prompt-tuning-r", 3e-2, 60, 16),
    ("prompt-tuning-t", 3e-1, 30, 8),
])
def test_learns_a_fixed_mapping_at_the_recipe_learning_rate(recipe, learning_rate, steps, length):
    """Final loss < 0.75 × initial on a toy task (a frozen random tiny T5 is hard to steer by a prompt)."""
    torch.manual_seed(0)
    model = tiny_model(d_model=32, d_kv=8, d_ff=64).train()
    source = surgery.load_recipe(recipe).source
    plan = surgery.plan(model, {**source, "options": {**source["options"], "length": length}})
    assert paper_defaults(get_task("rte"), recipe)["learning_rate"] == learning_rate  # appendix Table 4
    surgery.apply(model, plan)
    losses = losses_on_a_fixed_mapping(model, learning_rate, steps)
    assert losses[-1] < 0.75 * losses[0], losses


@pytest.mark.parametrize("init", ["random", "vocab"])
def test_adapter_checkpoint_round_trip(init, tmp_path):
    model = prompted(init=init)
    with torch.no_grad():
        model.surgery.adapters.default.prompt.weight.normal_()
    folder = surgery.save_adapter(model, tmp_path / init)
    fresh = tiny_model()
    surgery.load_adapter(fresh, folder)
    input_ids, mask = padded_batch()
    with torch.no_grad():
        a = model(input_ids=input_ids, attention_mask=mask, decoder_input_ids=input_ids[:, :3]).logits
        b = fresh(input_ids=input_ids, attention_mask=mask, decoder_input_ids=input_ids[:, :3]).logits
    assert torch.equal(a, b)


@pytest.mark.parametrize("options, key, value", [
    ({"length": 0}, "options.length", 0),
    ({"length": -3}, "options.length", -3),
    ({"length": 512}, "options.length", 512),                              # default max_source_length 512
    ({"length": 10, "max_source_length": 10}, "options.length", 10),
    ({"lenght": 10}, "options.lenght", "lenght"),
    ({"init": "vocabulary"}, "options.init", "vocabulary"),
    ({"init": "vocab", "vocab_low": 96}, "options.vocab_low", 96),
])
def test_bad_options_fail_at_plan_time(options, key, value):
    model = tiny_model()
    with pytest.raises(RecipeError) as error:
        surgery.plan(model, {"method": "prompt_tuning", "options": options})
    assert error.value.key == key and error.value.value == value
    assert repr(value) in str(error.value) and key in str(error.value)
    assert not hasattr(model, "surgery")


def test_length_budget_error_explains_the_relative_positions():
    with pytest.raises(RecipeError, match=r"relative positions.*max_source_length = 128"):
        surgery.plan(tiny_model(), {"method": "prompt_tuning", "options": {"length": 200, "max_source_length": 128}})
    surgery.plan(tiny_model(), {"method": "prompt_tuning", "options": {"length": 127, "max_source_length": 128}})
