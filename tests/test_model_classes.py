"""Every T5 model class of every family (T5, mT5, UMT5, LongT5) takes every recipe.

For each class, on a tiny random-init config: with the inserted modules made the identity the
spliced model computes what the untouched model computes (every output tensor, and `generate`
where the class has it); a training step changes only what the recipe trains (the head too when
`train: [head]` asks); a stack the model lacks is skipped unless the recipe names it.
"""

from __future__ import annotations

import copy

import pytest
import torch
import transformers

import surgery
from conftest import zero_up_projections
from surgery import RecipeError
from surgery.naming import canonical_name

FAMILIES = {"T5": transformers.T5Config, "MT5": transformers.MT5Config, "UMT5": transformers.UMT5Config,
            "LongT5": transformers.LongT5Config}
KINDS = ["ForConditionalGeneration", "Model", "EncoderModel", "ForSequenceClassification", "ForTokenClassification",
         "ForQuestionAnswering"]
CLASSES = [f"{family}{kind}" for family in FAMILIES for kind in KINDS if hasattr(transformers, f"{family}{kind}")]
HAS_HEAD = ("ForConditionalGeneration", "ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering")


def make(class_name: str, seed: int = 0, **overrides) -> torch.nn.Module:
    family = next(f for f in FAMILIES if class_name.startswith(f) and class_name[len(f):] in KINDS)
    fields = dict(vocab_size=96, d_model=128, d_kv=16, d_ff=128, num_layers=2, num_decoder_layers=2, num_heads=4,
                  dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, num_labels=3,
                  attn_implementation="eager")
    if family == "LongT5":
        fields.update(local_radius=2, global_block_size=2)
    if class_name.endswith("ForQuestionAnswering"):
        fields["num_labels"] = 2                  # start and end logits
    fields.update(overrides)
    torch.manual_seed(seed)
    return getattr(transformers, class_name)(FAMILIES[family](**fields)).eval()


def inputs_for(class_name: str) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(2, 96, (2, 9), generator=generator)
    input_ids[:, -1] = 1                       # one eos per row (the classification head reads it)
    input_ids[1, 6:] = 0
    input_ids[1, 5] = 1
    attention_mask = (input_ids != 0).long()
    batch = {"input_ids": input_ids, "attention_mask": attention_mask}
    if class_name.endswith(("ForConditionalGeneration", "Model")) and not class_name.endswith("EncoderModel"):
        batch["decoder_input_ids"] = torch.randint(2, 96, (2, 4), generator=generator)
    return batch


def tensors_of(output) -> dict[str, torch.Tensor]:
    return {key: value for key, value in output.items() if isinstance(value, torch.Tensor)}


def loss_of(class_name: str, model, batch) -> torch.Tensor:
    if class_name.endswith("ForConditionalGeneration"):
        batch = {k: v for k, v in batch.items() if k != "decoder_input_ids"}
        return model(**batch, labels=torch.tensor([[5, 6, 7, 1], [8, 9, 1, 0]])).loss
    if class_name.endswith("ForSequenceClassification"):
        return model(**batch, labels=torch.tensor([0, 2])).loss
    if class_name.endswith("ForTokenClassification"):
        return model(**batch, labels=torch.randint(0, 3, batch["input_ids"].shape, generator=torch.Generator().manual_seed(2))).loss
    if class_name.endswith("ForQuestionAnswering"):
        return model(**batch, start_positions=torch.tensor([1, 2]), end_positions=torch.tensor([3, 4])).loss
    hidden = model(**batch).last_hidden_state   # (its mean square is constant after T5's RMS norm: project it)
    return (hidden * torch.randn(hidden.shape[-1], generator=torch.Generator().manual_seed(3))).sum()


@pytest.mark.parametrize("class_name", CLASSES)
def test_identity_modules_preserve_every_output(class_name):
    base = make(class_name)
    batch = inputs_for(class_name)
    for recipe in ("adapter", "compacter++"):       # all three sites; the shared rule
        model = copy.deepcopy(base)
        surgery.apply(model, recipe)
        zero_up_projections(model)
        with torch.no_grad():
            expected, actual = tensors_of(base(**batch)), tensors_of(model(**batch))
        assert expected and actual.keys() == expected.keys()
        for key in expected:
            torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=1e-6, msg=f"{recipe}: {key}")
        if class_name.endswith("ForConditionalGeneration"):
            inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
            for beams in (1, 2):
                want = base.generate(**inputs, max_new_tokens=5, do_sample=False, num_beams=beams)
                got = model.generate(**inputs, max_new_tokens=5, do_sample=False, num_beams=beams)
                assert torch.equal(got, want), f"{recipe}: generate with {beams} beams"


@pytest.mark.parametrize("class_name", CLASSES)
def test_modules_are_spliced_into_every_stack_the_class_has(class_name):
    model = make(class_name)
    surgery.apply(model, "adapter")
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".spliced." in name:
                parameter.normal_(std=0.5)
    spliced_stacks = {name.split(".block.")[0] for name, _ in model.named_parameters() if ".spliced." in name}
    has_decoder = not class_name.endswith(("EncoderModel", "ForTokenClassification"))
    prefix = "transformer." if class_name.endswith(("ForSequenceClassification", "ForTokenClassification")) else ""
    assert spliced_stacks == {f"{prefix}encoder"} | ({f"{prefix}decoder"} if has_decoder else set())
    # The modules matter: non-zero adapters change the output (so the check above is not vacuous).
    batch = inputs_for(class_name)
    with torch.no_grad():
        changed, reference = tensors_of(model(**batch)), tensors_of(make(class_name)(**batch))
    assert any(not torch.allclose(changed[k], reference[k], atol=1e-3) for k in reference)


@pytest.mark.parametrize("class_name", CLASSES)
def test_a_training_step_changes_only_what_the_recipe_trains(class_name):
    wants_head = class_name.endswith(HAS_HEAD)
    recipe = {**surgery.load_recipe("compacter++").source, "train": ["layer_norms"] + (["head"] * wants_head)}
    model = make(class_name).train()
    report = surgery.report(surgery.apply(model, recipe))
    if wants_head:
        assert report.groups["head"] > 0
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    loss_of(class_name, model, inputs_for(class_name)).backward()
    optimizer.step()
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed <= trained
    # Every trained tensor with a gradient moved (a QA head's bias has none: softmax ignores a constant).
    assert {name for name, p in model.named_parameters() if p.grad is not None and p.grad.abs().max() > 0} == changed
    # The QA head's bias adds the same number to every position's start (end) logit, and the loss is a
    # softmax over positions, so its gradient is Σᵢ(pᵢ - yᵢ) = 0 exactly in real arithmetic. In float32 it
    # is rounding noise of that sum (±1.5e-8 to 4.5e-8 here) or exactly 0, depending on the class and on the
    # CPU's kernels (mT5's is exactly 0 on an AMD EPYC AVX2 CPU, ±1.5e-8 with ATEN_CPU_CAPABILITY=default),
    # and Adam turns any non-zero gradient into a full step, so whether it moves is machine-dependent.
    # Assert what holds everywhere: its gradient is zero up to rounding (1e-6 bounds the rounding of a sum
    # of 9 probabilities), while the head's weight learns.
    zero_gradient = {name for name in trained if canonical_name(name, "default").endswith("qa_outputs.bias")}
    assert bool(zero_gradient) == (class_name.endswith("ForQuestionAnswering") and wants_head)
    for name in zero_gradient:
        grad = model.get_parameter(name).grad
        assert grad is not None and grad.abs().max() <= 1e-6, name
        weight = model.get_parameter(name.replace("qa_outputs-bias", "qa_outputs-weight"))
        assert weight.grad.abs().max() > 1e-3 and name.replace("-bias", "-weight") in changed
    assert {name for name in trained if ".spliced." in name or name.startswith("surgery.")} - zero_gradient <= changed
    # The adapter trains its own copy of the head (surgery.adapters.default.base.<name>); the base head stays.
    # (a tied LM head is the embedding matrix: its copy is named after shared.weight)
    head = {id(p) for module in surgery.family.task_head_modules(model).values() for p in module.parameters()}
    head_changed = {name for name in changed if name.startswith("surgery.adapters.default.base.")
                    and id(model.get_parameter(canonical_name(name, "default"))) in head}
    assert bool(head_changed) == wants_head
    assert not any(id(p) in head and name in changed for name, p in model.named_parameters())


@pytest.mark.parametrize("class_name", ["T5Model", "T5EncoderModel", "UMT5Model"])
def test_head_is_refused_on_a_class_without_one(class_name):
    recipe = {**surgery.load_recipe("compacter++").source, "train": ["head"]}
    with pytest.raises(RecipeError, match=rf"'train': 'head' names a task head, but {class_name} has none"):
        surgery.plan(make(class_name), recipe)


@pytest.mark.parametrize("class_name", ["T5EncoderModel", "MT5ForTokenClassification", "LongT5EncoderModel"])
def test_a_missing_stack_is_skipped_unless_named(class_name):
    model = make(class_name)
    for layers in ("all", {"skip_first": 1}, None):     # one selection for each stack the model has, or the default
        plan = surgery.plan(model, {"method": "adapter", "sites": ["after_ffn"], "layers": layers})
        assert set(plan.layers) == {"encoder"} and plan.splices
    for layers in ({"decoder": "all"}, {"encoder": "all", "decoder": [0]}):
        recipe = {"method": "adapter", "sites": ["after_ffn"], "layers": layers}
        with pytest.raises(RecipeError, match=rf"'layers': 'decoder' is not a stack of this model \({class_name} has encoder\); valid: encoder"):
            surgery.plan(model, recipe)
    assert not hasattr(model, "surgery")


@pytest.mark.parametrize("recipe", surgery.bundled_recipes())
@pytest.mark.parametrize("class_name", ["T5EncoderModel", "MT5ForSequenceClassification", "UMT5ForQuestionAnswering",
                                        "LongT5ForConditionalGeneration", "T5ForTokenClassification"])
def test_every_bundled_recipe_applies_and_runs(class_name, recipe):
    if recipe == "phm-adapter":   # n = 12 must divide the hidden size and the bottleneck: 384 / 32 = 12
        model = make(class_name, d_model=384, d_kv=16, d_ff=64)
    elif recipe == "adapterdrop":  # skips the first 5 blocks of each stack
        model = make(class_name, num_layers=6, num_decoder_layers=6, d_model=64, d_ff=64)
    elif recipe == "compacter++-drop":  # skips 5 blocks too, and n = 4 must divide the bottleneck 128 / 32
        model = make(class_name, num_layers=6, num_decoder_layers=6, d_model=128, d_ff=64)
    else:
        model = make(class_name)
    options = {"options": {**surgery.load_recipe(recipe).options, "dimension": 2000}} if recipe == "intrinsic-said" else {}
    if recipe.startswith("prompt-tuning"):
        options = {"options": {**surgery.load_recipe(recipe).options, "length": 3}}
    report = surgery.report(surgery.apply(model, {**surgery.load_recipe(recipe).source, **options}))
    assert report.trainable > 0
    batch = inputs_for(class_name)
    loss_of(class_name, model.train(), batch).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_longt5_transient_global_attention_is_a_self_attention_site():
    base = make("LongT5ForConditionalGeneration", encoder_attention_type="transient-global")
    assert type(base.encoder.block[0].layer[0]).__name__ == "LongT5LayerTransientGlobalSelfAttention"
    model = copy.deepcopy(base)
    assert surgery.list_sites(model)["encoder.block.0"] == ["after_self_attention", "after_ffn"]
    surgery.apply(model, "adapter")
    zero_up_projections(model)
    batch = inputs_for("LongT5ForConditionalGeneration")
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, base(**batch).logits, rtol=0, atol=1e-6)


def test_sites_are_listed_under_the_blocks_real_names():
    sites = surgery.list_sites(make("T5ForSequenceClassification"))
    assert list(sites) == ["transformer.encoder.block.0", "transformer.encoder.block.1",
                           "transformer.decoder.block.0", "transformer.decoder.block.1"]
    assert sites["transformer.decoder.block.1"] == ["after_self_attention", "after_cross_attention", "after_ffn"]


def test_output_layer_is_refused_where_there_is_no_lm_head():
    recipe = {**surgery.load_recipe("compacter++").source, "train": ["output_layer"]}
    with pytest.raises(RecipeError, match="'train': 'output_layer' selects no parameter of T5ForSequenceClassification"):
        surgery.plan(make("T5ForSequenceClassification"), recipe)


@pytest.mark.parametrize("class_name", ["T5EncoderModel", "MT5ForTokenClassification"])
def test_prompt_tuning_on_an_encoder_only_class_keeps_the_input_length(class_name):
    base = make(class_name)
    model = copy.deepcopy(base)
    surgery.apply(model, {"method": "prompt_tuning", "options": {"length": 3}})
    batch = inputs_for(class_name)
    with torch.no_grad():
        got, want = tensors_of(model(**batch)), tensors_of(base(**batch))
    key = "last_hidden_state" if "last_hidden_state" in want else "logits"
    assert got[key].shape == want[key].shape and got[key].shape[1] == batch["input_ids"].shape[1]
    assert not torch.allclose(got[key], want[key], atol=1e-4)      # the tokens attended to the prompt
