"""Llama, Qwen2, Mistral, GPT-2, BART, mBART, BERT and RoBERTa: the site recipes on every declared class.

Every model is a tiny random-init config (hidden 64, one block per stack; two where AdapterDrop
needs a block to skip). Each test compares the
spliced model with an unmodified copy of the same weights, or with a plainly computed reference:
never with the code under test. Inserted modules are found by type (`BottleneckAdapter`), never by
their module path.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
import transformers as tf
from torch import nn

import surgery
from methods.adapter import BottleneckAdapter
from surgery.family_registry import detect_family
from surgery.sites import find_sites
from surgery.tracing import trace_block

VOCAB = 64
_DECODER_ONLY = dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
                     vocab_size=VOCAB, pad_token_id=0)
_BART = dict(d_model=64, encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128,
             vocab_size=VOCAB, max_position_embeddings=32)
_BERT = dict(hidden_size=64, num_attention_heads=4, intermediate_size=128, vocab_size=VOCAB, max_position_embeddings=40)

# family -> config with `n` blocks per stack
CONFIGS: dict[str, Callable[[int], tf.PretrainedConfig]] = {
    "llama": lambda n: tf.LlamaConfig(num_hidden_layers=n, **_DECODER_ONLY),
    "qwen2": lambda n: tf.Qwen2Config(num_hidden_layers=n, **_DECODER_ONLY),
    "mistral": lambda n: tf.MistralConfig(num_hidden_layers=n, **_DECODER_ONLY),
    "gpt2": lambda n: tf.GPT2Config(n_embd=64, n_layer=n, n_head=4, vocab_size=VOCAB, n_positions=32, pad_token_id=0),
    "bart": lambda n: tf.BartConfig(encoder_layers=n, decoder_layers=n, **_BART),
    "mbart": lambda n: tf.MBartConfig(encoder_layers=n, decoder_layers=n, **_BART),
    "bert": lambda n: tf.BertConfig(num_hidden_layers=n, **_BERT),
    "roberta": lambda n: tf.RobertaConfig(num_hidden_layers=n, **_BERT),
}

# family -> its LM, sequence-classification and token-classification classes (those transformers has)
CLASSES = {
    "llama": ("LlamaForCausalLM", "LlamaForSequenceClassification", "LlamaForTokenClassification"),
    "qwen2": ("Qwen2ForCausalLM", "Qwen2ForSequenceClassification", "Qwen2ForTokenClassification"),
    "mistral": ("MistralForCausalLM", "MistralForSequenceClassification", "MistralForTokenClassification"),
    "gpt2": ("GPT2LMHeadModel", "GPT2ForSequenceClassification", "GPT2ForTokenClassification"),
    "bart": ("BartForConditionalGeneration", "BartForSequenceClassification"),
    "mbart": ("MBartForConditionalGeneration", "MBartForSequenceClassification"),
    "bert": ("BertForMaskedLM", "BertForSequenceClassification", "BertForTokenClassification"),
    "roberta": ("RobertaForMaskedLM", "RobertaForSequenceClassification", "RobertaForTokenClassification"),
}
MODEL_CLASSES = [(family, name) for family, names in CLASSES.items() for name in names]
GENERATIVE = [(f, c) for f, c in MODEL_CLASSES if c.endswith(("CausalLM", "LMHeadModel", "ConditionalGeneration"))]
LM_CLASS = {family: names[0] for family, names in CLASSES.items()}

# Where each site takes its input, per family and stack: the module whose output the adapter reads,
# and whether the branch's dropout follows the site (the paper's placement: before dropout).
EXPECTED_SITES = {
    ("llama", "decoder"): {"after_self_attention": "self_attn", "after_ffn": "mlp"},
    ("gpt2", "decoder"): {"after_self_attention": "attn", "after_ffn": "mlp"},
    ("bart", "encoder"): {"after_self_attention": "self_attn", "after_ffn": "fc2"},
    ("bart", "decoder"): {"after_self_attention": "self_attn", "after_cross_attention": "encoder_attn", "after_ffn": "fc2"},
    ("bert", "encoder"): {"after_self_attention": "attention.output.dense", "after_ffn": "output.dense"},
}
EXPECTED_SITES.update({("qwen2", "decoder"): EXPECTED_SITES["llama", "decoder"],
                       ("mistral", "decoder"): EXPECTED_SITES["llama", "decoder"],
                       ("mbart", "encoder"): EXPECTED_SITES["bart", "encoder"],
                       ("mbart", "decoder"): EXPECTED_SITES["bart", "decoder"],
                       ("roberta", "encoder"): EXPECTED_SITES["bert", "encoder"]})
# Families whose residual branch has a visible dropout after the sublayer (the site sits before it).
DROPOUT_AFTER_SITE = {"bart", "mbart", "bert", "roberta"}


def make(family: str, class_name: str, blocks: int = 1, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return getattr(tf, class_name)(CONFIGS[family](blocks)).eval()


def inputs(model: nn.Module) -> dict[str, torch.Tensor]:
    """Two rows, the second left-padded; every row ends in id 2 (BART's classification head reads the last <eos>)."""
    ids = torch.tensor([[5, 6, 7, 8, 9, 2], [0, 11, 12, 13, 14, 2]])
    batch = {"input_ids": ids, "attention_mask": (ids != 0).long()}
    if model.config.is_encoder_decoder and type(model).__name__.endswith("ConditionalGeneration"):
        batch["decoder_input_ids"] = torch.tensor([[2, 5, 6], [2, 7, 8]])
    return batch


def tiny_recipe(name: str) -> dict:
    """A bundled recipe fitted to two-block, hidden-64 models (PHM n = 2; AdapterDrop skips one block)."""
    recipe = surgery.load_recipe(name)
    options = dict(recipe.options)
    if options.get("projection") == "phm":
        options["n"] = 2
    source = {**recipe.source, "options": options}
    if "skip_first" in str(recipe.source.get("layers")):
        source["layers"] = {"skip_first": 1}
    return source


def adapters(model: nn.Module) -> list[BottleneckAdapter]:
    found = [m for m in model.modules() if isinstance(m, BottleneckAdapter)]
    assert found, "no adapter was inserted"
    return found


def zero_adapters(model: nn.Module) -> None:
    """Make every inserted adapter the identity: its up-projection's own tensors are zero."""
    with torch.no_grad():
        for adapter in adapters(model):
            for parameter in adapter.up.parameters(recurse=False):
                parameter.zero_()


def perturb_adapters(model: nn.Module, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for adapter in adapters(model):
            for parameter in adapter.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)


def logits(model: nn.Module, batch: dict) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).logits


SITE_RECIPES = ["adapter", "pfeiffer-adapter", "adapter-lowrank", "phm-adapter", "compacter", "compacter++",
                "adapterdrop", "compacter++-drop"]


@pytest.mark.parametrize("family", sorted(CONFIGS))
def test_each_site_reads_the_declared_sublayer(family):
    """The exact module each site's input comes from, per family and stack, and the dropout after it."""
    model = make(family, LM_CLASS[family])
    declared = detect_family(model)
    assert declared.name == family
    for stack, blocks in declared.blocks(model).items():
        for block in blocks:
            graph = trace_block(block, declared, torch.float32)
            sites = find_sites(graph, block, declared)
            assert {name: site.sublayer for name, site in sites.items()} == EXPECTED_SITES[family, stack]
            for site in sites.values():
                producer = site.output.args[0] if site.output.op == "call_function" else site.output
                assert producer.op == "call_module" and producer.target == site.sublayer
                consumer = site.consumer
                is_dropout = isinstance(getattr(consumer, "target", None), str) and consumer.op == "call_module" \
                    and isinstance(block.get_submodule(consumer.target), nn.Dropout) \
                    or consumer.target is nn.functional.dropout
                assert is_dropout == (family in DROPOUT_AFTER_SITE), (stack, site.name, consumer)


@pytest.mark.parametrize("family,class_name", MODEL_CLASSES)
def test_identity_adapters_preserve_logits_real_ones_change_them_and_save_load_is_exact(family, class_name, tmp_path):
    base = make(family, class_name)
    model = copy.deepcopy(base)
    surgery.apply(model, "adapter")
    batch = inputs(base)
    expected = logits(base, batch)
    zero_adapters(model)
    torch.testing.assert_close(logits(model, batch), expected, rtol=0, atol=1e-6)
    perturb_adapters(model)
    changed = logits(model, batch)
    assert (changed - expected).abs().max() > 1e-3  # on the data path
    surgery.save_adapter(model, tmp_path)
    loaded = copy.deepcopy(base)
    surgery.load_adapter(loaded, tmp_path)
    trained = {n: p for n, p in model.named_parameters() if p.requires_grad}
    restored = dict(loaded.named_parameters())
    assert trained and all(torch.equal(restored[n], p) for n, p in trained.items())
    torch.testing.assert_close(logits(loaded, batch), changed, rtol=0, atol=0)


@pytest.mark.parametrize("recipe", SITE_RECIPES)
@pytest.mark.parametrize("family", ["llama", "bart"])  # pre-norm decoder-only; post-norm encoder-decoder
def test_every_site_recipe_preserves_the_function_with_identity_adapters(family, recipe):
    base = make(family, LM_CLASS[family], blocks=2 if "drop" in recipe else 1)
    model = copy.deepcopy(base)
    surgery.apply(model, tiny_recipe(recipe))
    zero_adapters(model)
    batch = inputs(base)
    torch.testing.assert_close(logits(model, batch), logits(base, batch), rtol=0, atol=1e-6)


def test_adapterdrop_leaves_the_first_blocks_without_adapters():
    model = make("llama", "LlamaForCausalLM", blocks=2)
    surgery.apply(model, tiny_recipe("adapterdrop"))
    blocks = detect_family(model).blocks(model)["decoder"]
    per_block = [sum(isinstance(m, BottleneckAdapter) for m in block.modules()) for block in blocks]
    assert per_block == [0, 2]


@pytest.mark.parametrize("family,class_name", GENERATIVE)
def test_generate_matches_the_base_with_identity_adapters(family, class_name):
    base = make(family, class_name)
    model = copy.deepcopy(base)
    surgery.apply(model, tiny_recipe("compacter++"))
    zero_adapters(model)
    batch = inputs(base)
    prompt = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    for options in ({"num_beams": 1}, {"num_beams": 3}):
        expected = base.generate(**prompt, max_new_tokens=5, do_sample=False, use_cache=True, **options)
        actual = model.generate(**prompt, max_new_tokens=5, do_sample=False, use_cache=True, **options)
        assert torch.equal(actual, expected), options


def _layer_norm_parameter_ids(model: nn.Module) -> set[int]:
    norms = detect_family(model).layer_norm_classes
    return {id(p) for m in model.modules() if isinstance(m, norms) for p in m.parameters(recurse=False)}


@pytest.mark.parametrize("family", sorted(CONFIGS))
def test_one_training_step_changes_exactly_the_adapters_the_rule_and_the_layer_norms(family):
    base = make(family, LM_CLASS[family])
    model = make(family, LM_CLASS[family])
    surgery.apply(model, tiny_recipe("compacter++"))
    model.train()
    # What compacter++ trains, found independently: the adapters' tensors, the shared rule, and its own
    # copy of every layer norm's tensors (the base's layer norms stay frozen): everything not in the base.
    base_names = set(dict(base.named_parameters()))
    adapter_ids = {id(p) for a in adapters(model) for p in a.parameters()}
    expected = {n for n, p in model.named_parameters() if n not in base_names}
    assert adapter_ids <= {id(p) for n, p in model.named_parameters() if n in expected}
    norm_ids = _layer_norm_parameter_ids(base)
    copied = {n.split(".base.", 1)[1].replace("-", ".") for n in expected if n.startswith("surgery.adapters.default.base.")}
    assert copied == {n for n, p in base.named_parameters() if id(p) in norm_ids}
    assert {n for n, p in model.named_parameters() if p.requires_grad} == expected
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    batch = inputs(model)
    loss = model(**batch).logits.float().pow(2).mean()
    loss.backward()
    # Adam with a negligible eps moves every entry with a nonzero gradient by ~lr, however small the gradient
    # (the shared rule starts at N(0, 1e-4²), so the factors' gradients can be tiny).
    torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2, eps=1e-30).step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert changed == expected


class _RecordingKeywords:
    """Patch an attention class's forward to record the keyword arguments it receives."""

    def __init__(self, monkeypatch, attention_class: type[nn.Module]):
        self.seen: list[dict] = []
        original = attention_class.forward

        def forward(module, *args, **kwargs):
            self.seen.append(kwargs)
            return original(module, *args, **kwargs)

        monkeypatch.setattr(attention_class, "forward", forward)


@pytest.mark.parametrize("family", ["llama", "gpt2", "bart", "bert"])
def test_a_spliced_block_passes_an_extra_keyword_to_its_attention(family, monkeypatch):
    """Keyword arguments a block forwards with `**kwargs` (e.g. kernel extras for packed sequences)
    reach the attention inside a spliced block as they do in the unmodified one."""
    model = make(family, LM_CLASS[family])
    declared = detect_family(model)
    surgery.apply(model, "adapter")
    zero_adapters(model)
    # BERT's attention module is traced through; the module kept whole inside it is its self-attention.
    attention = declared.extra_leaf_classes[0] if declared.extra_leaf_classes else declared.attention_classes[0]
    recorder = _RecordingKeywords(monkeypatch, attention)
    marker = object()
    stack = "decoder" if "decoder" in declared.blocks(model) and family != "bart" else "encoder"
    block = declared.blocks(model)[stack][0]
    hidden = torch.randn(1, 4, 64)
    extra = {}
    if family == "llama":
        extra["position_embeddings"] = model.model.rotary_emb(hidden, torch.arange(4)[None])
    elif family == "bart":
        extra["attention_mask"] = None
    with torch.no_grad():
        block(hidden, **extra, surgery_test_marker=marker)
    assert any(kwargs.get("surgery_test_marker") is marker for kwargs in recorder.seen)


def test_bart_traced_in_eval_then_trained_drops_out_as_the_base_does():
    """BART's dropout is functional (`training=self.training`): a block spliced in eval mode and then
    switched to train mode must draw the same dropout masks as the unmodified model in train mode."""
    base = make("bart", "BartForConditionalGeneration")
    model = copy.deepcopy(base)
    surgery.apply(model, "adapter")  # traced while the model is in eval mode
    zero_adapters(model)
    batch = inputs(base)
    base.train(), model.train()
    torch.manual_seed(3)
    expected = base(**batch).logits
    torch.manual_seed(3)
    actual = model(**batch).logits
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6)
    assert (expected - logits(base.eval(), batch)).abs().max() > 1e-3  # dropout did act in train mode


def test_a_dtype_bart_cannot_be_traced_in_is_refused_with_the_dtypes_that_work():
    model = make("bart", "BartForConditionalGeneration").half()
    with pytest.raises(surgery.TraceError, match=r"float16.*dtypes that work: float32, float64, bfloat16"):
        surgery.plan(model, "adapter")
    assert not any(isinstance(m, BottleneckAdapter) for m in model.modules())
    bf16 = make("bart", "BartForConditionalGeneration").to(torch.bfloat16)
    surgery.plan(bf16, "adapter")  # works


@pytest.mark.parametrize("recipe", ["prompt-tuning-r", "prompt-tuning-t"])
@pytest.mark.parametrize("family", ["bart", "bert"])
def test_prompt_tuning_is_refused_at_plan_time_on_encoders_with_absolute_positions(family, recipe):
    model = make(family, LM_CLASS[family])
    with pytest.raises(surgery.RecipeError, match=r"recipe key 'method': 'prompt-tuning'.*learned absolute positions"):
        surgery.plan(model, recipe)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_prompt_tuning_on_a_decoder_only_model_is_the_base_fed_the_prompt_first(family):
    """Independent reference: the unmodified model given [prompt; token embeddings] and a mask with the
    prompt's ones in front, the prompt's positions dropped from its logits; `generate` (greedy, beams,
    KV cache) gives the tokens the base generates from those embeddings."""
    base = make(family, LM_CLASS[family])
    model = copy.deepcopy(base)
    surgery.apply(model, {"method": "prompt_tuning", "options": {"length": 4}})
    (prompt,) = [p for p in model.parameters() if p.requires_grad]
    batch = inputs(base)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    with torch.no_grad():
        embeds = torch.cat([prompt.expand(2, -1, -1), base.get_input_embeddings()(ids)], dim=1)
        extended = torch.cat([torch.ones(2, 4, dtype=mask.dtype), mask], dim=1)
        expected = base(inputs_embeds=embeds, attention_mask=extended).logits[:, 4:]
        actual = model(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6)
    assert (actual - logits(base, {"input_ids": ids, "attention_mask": mask})).abs().max() > 1e-4
    for options in ({"num_beams": 1}, {"num_beams": 3}):
        generated = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False, **options)
        reference = base.generate(inputs_embeds=embeds, attention_mask=extended, max_new_tokens=4, do_sample=False, **options)
        assert torch.equal(generated[:, ids.shape[1]:], reference), options
    model.train()
    model(input_ids=ids, attention_mask=mask, labels=ids).loss.backward()  # labels line up with the input
    assert [n for n, p in model.named_parameters() if p.grad is not None] == [n for n, p in model.named_parameters() if p.requires_grad]


def test_bitfit_on_gpt2_trains_a_bias_on_every_conv1d_layer():
    model = make("gpt2", "GPT2LMHeadModel")
    report = surgery.report(surgery.apply(model, "bitfit"))
    hidden, ffn = 64, 256
    per_block = 3 * hidden + hidden + ffn + hidden + 2 * hidden  # c_attn, attn c_proj, c_fc, mlp c_proj, ln_1, ln_2
    assert report.groups["biases"] == per_block + VOCAB  # one block, + the output layer


@pytest.mark.parametrize("family", ["gpt2", "bert", "bart", "llama"])
def test_bitfit_biases_act_as_the_layers_own_biases(family):
    """BitFit's trained bias δ on a layer that has a bias b computes what the base computes with b + δ
    (so training δ is training the existing bias); on a layer without one, what the base computes with
    δ added to the layer's output."""
    base = make(family, LM_CLASS[family])
    model = copy.deepcopy(base)
    surgery.apply(model, "bitfit")
    reference = copy.deepcopy(base)
    reference_modules = dict(reference.named_modules())
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, module in model.named_modules():
            for parameter in module.parameters(recurse=False):
                if not parameter.requires_grad:
                    continue
                delta = torch.randn(parameter.shape, generator=generator) * 0.1
                parameter.copy_(delta)
                same = reference_modules[name]
                if isinstance(getattr(same, "bias", None), torch.Tensor):
                    same.bias.add_(delta)
                else:
                    same.register_forward_hook(lambda m, a, out, d=delta: out + d)
    batch = inputs(base)
    torch.testing.assert_close(logits(model, batch), logits(reference, batch), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family", sorted(CONFIGS))
def test_intrinsic_said_starts_at_the_base_and_every_scale_gets_a_gradient(family):
    base = make(family, LM_CLASS[family])
    model = copy.deepcopy(base)
    surgery.apply(model, {"method": "intrinsic_said", "options": {"dimension": 2000}})
    batch = inputs(base)
    torch.testing.assert_close(logits(model, batch), logits(base, batch), rtol=0, atol=1e-6)
    trained = [p for p in model.parameters() if p.requires_grad]
    assert sum(p.numel() for p in trained) == 2000
    z, scales = sorted(trained, key=lambda p: -p.numel())  # z, then one λ per reparametrised tensor
    with torch.no_grad():
        z.normal_(std=1e-3)  # at z = 0 every λ's gradient is 0 (it scales a zero Δ)
    model.train()
    model(**batch).logits.pow(2).mean().backward()
    # Every reparametrised tensor is read through its hook: each λ moves the loss. BERT's and RoBERTa's
    # MLM heads hold the frozen output layer's bias once more (tied): it is the output layer's, left out.
    names = model.surgery.adapters.default.intrinsic.tensor_names
    assert (scales.grad != 0).all(), [names[i] for i in range(len(names)) if scales.grad[i] == 0]
    assert not {"cls.predictions.bias", "cls.predictions.decoder.bias", "lm_head.bias", "lm_head.decoder.bias"} & set(names)


@pytest.mark.parametrize("family,class_name,head", [("llama", "LlamaForSequenceClassification", "score"),
                                                    ("gpt2", "GPT2ForTokenClassification", "classifier"),
                                                    ("bert", "BertForSequenceClassification", "classifier"),
                                                    ("bart", "BartForSequenceClassification", "classification_head")])
def test_the_head_group_trains_each_familys_task_head(family, class_name, head):
    model = make(family, class_name)
    head_names = {f"{head}.{n}" for n, _ in model.get_submodule(head).named_parameters()}
    surgery.apply(model, {**tiny_recipe("compacter++"), "train": ["layer_norms", "head"]})
    # the adapter trains its own copy of each head tensor (the base's stays frozen)
    copies = {f"surgery.adapters.default.base.{n.replace('.', '-')}" for n in head_names}
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert head_names and copies <= trained and not head_names & trained


@pytest.mark.parametrize("family,class_name", [("bart", "BartForCausalLM"), ("mbart", "MBartForCausalLM")])
def test_a_declared_but_unsupported_class_is_refused_before_surgery(family, class_name):
    model = getattr(tf, class_name)(CONFIGS[family](1))
    with pytest.raises(surgery.SurgeryError, match=rf"{class_name} \({family} family\) is not supported: runs the decoder"):
        surgery.plan(model, "adapter")


@pytest.mark.parametrize("family,class_name", [("bert", "BertLMHeadModel"), ("roberta", "RobertaForCausalLM")])
def test_a_causal_bert_without_cross_attention_keeps_its_function_and_generation(family, class_name):
    """`is_decoder` BERT layers built without cross-attention are traced with the encoder's states fixed to None."""
    config = CONFIGS[family](1)
    config.is_decoder = True
    torch.manual_seed(0)
    base = getattr(tf, class_name)(config).eval()
    model = copy.deepcopy(base)
    surgery.apply(model, "adapter")
    zero_adapters(model)
    batch = inputs(base)
    torch.testing.assert_close(logits(model, batch), logits(base, batch), rtol=0, atol=1e-6)
    expected = base.generate(**batch, max_new_tokens=3, do_sample=False)
    assert torch.equal(model.generate(**batch, max_new_tokens=3, do_sample=False), expected)
