"""A spliced block receives what the unmodified block receives, and reads its mode when it runs.

Each test compares a spliced model (adapters made the identity by zeroing their up-projections)
with an unmodified copy of the same weights: outputs and gradients of every base parameter.
Only a dtype change re-traces a block; keyword arguments and train/eval switches do not.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from transformers import AttentionInterface
from transformers.models.t5.modeling_t5 import T5LayerFF

import surgery
import surgery.splice
from conftest import tiny_model, zero_up_projections
from surgery.naming import canonical_name

COPIES = "surgery.adapters.default.base."   # the default adapter's own copies of base tensors

SCALED_KERNEL = "surgery-test-scaled-scores"


def scaled_scores_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                            position_bias=None, score_scale: float = 1.0, **kwargs):
    """Plain T5 attention whose scores are multiplied by the extra keyword `score_scale`."""
    scores = torch.matmul(query, key.transpose(2, 3)) * score_scale
    if position_bias is not None:
        scores = scores + position_bias
    if attention_mask is not None:
        scores = scores + attention_mask
    weights = nn.functional.dropout(scores.softmax(dim=-1), p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


AttentionInterface.register(SCALED_KERNEL, scaled_scores_attention)


class FunctionalDropoutFF(T5LayerFF):
    """T5's feed-forward sublayer with functional dropout: its code reads `self.training`.

    The tracer inlines this sublayer (it is not a leaf), so the flag is read inside the block's graph.
    """

    def forward(self, hidden_states):
        update = self.DenseReluDense(self.layer_norm(hidden_states))
        return hidden_states + nn.functional.dropout(update, p=self.dropout.p, training=self.training)


def identity_spliced_copy(base: nn.Module, recipe: str | dict = "adapter") -> nn.Module:
    """`base`'s weights with `recipe`'s adapters made the identity; every parameter trainable."""
    model = copy.deepcopy(base)
    surgery.apply(model, recipe)
    zero_up_projections(model)
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    return model


def loss_and_gradients(model: nn.Module, batch: dict, seed: int = 5, **kwargs) -> tuple[torch.Tensor, dict]:
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    loss = model(**batch, **kwargs).loss
    loss.backward()
    return loss.detach(), base_gradients(model)


def base_gradients(model: nn.Module) -> dict[str, torch.Tensor]:
    """The gradient of every base tensor the forward read, by its base name. An adapter trains its own
    copy of a base tensor (a layer norm) and the forward reads that copy: it stands for the base tensor."""
    grads = {}
    for name, p in model.named_parameters():
        if p.grad is None or (surgery.naming.is_added(name) and not name.startswith(COPIES)):
            continue
        base_name = canonical_name(name, "default") if name.startswith(COPIES) else name
        assert base_name not in grads, base_name   # the base tensor and its copy are never both read
        grads[base_name] = p.grad.clone()
    return grads


def assert_same_loss_and_gradients(actual: tuple, expected: tuple, atol: float = 1e-6) -> None:
    torch.testing.assert_close(actual[0], expected[0], rtol=0, atol=atol)
    assert actual[1].keys() == expected[1].keys() and len(expected[1]) > 0
    for name, grad in expected[1].items():
        torch.testing.assert_close(actual[1][name], grad, rtol=0, atol=atol, msg=name)


def count_traces(monkeypatch) -> list[str]:
    """Record each block graph built from now on (the splice builds one per trace)."""
    built: list[str] = []
    build_graph = surgery.splice.build_graph

    def counting(block, dtype, traced=None):
        built.append(f"{block._surgery_name} {dtype}")
        return build_graph(block, dtype, traced)

    monkeypatch.setattr(surgery.splice, "build_graph", counting)
    return built


def test_extra_keyword_reaches_the_attention_kernel_of_every_spliced_block(batch):
    base = tiny_model("v1.0", attn_implementation=SCALED_KERNEL)
    model = identity_spliced_copy(base)
    arrived = []
    model.encoder.block[1].layer[0].SelfAttention.register_forward_pre_hook(
        lambda module, args, kwargs: arrived.append(kwargs.get("score_scale")), with_kwargs=True)
    model.decoder.block[0].layer[1].EncDecAttention.register_forward_pre_hook(
        lambda module, args, kwargs: arrived.append(kwargs.get("score_scale")), with_kwargs=True)

    expected = loss_and_gradients(base, batch, score_scale=0.25)
    actual = loss_and_gradients(model, batch, score_scale=0.25)

    assert arrived == [0.25, 0.25]
    assert_same_loss_and_gradients(actual, expected)
    # The keyword matters: without it (scale 1) the loss differs, so a dropped keyword would fail above.
    assert not torch.allclose(loss_and_gradients(base, batch)[0], expected[0], atol=1e-3)


def test_a_spliced_block_called_directly_passes_its_keywords_on():
    base_model = tiny_model("v1.0", attn_implementation=SCALED_KERNEL)
    model = identity_spliced_copy(base_model)
    base, block = base_model.encoder.block[0], model.encoder.block[0]
    assert isinstance(block, surgery.splice.SplicedBlockMixin)
    hidden = torch.randn(2, 5, 64, generator=torch.Generator().manual_seed(3))
    seen = []
    block.layer[0].SelfAttention.register_forward_pre_hook(lambda m, a, kwargs: seen.append(dict(kwargs)), with_kwargs=True)

    outputs = {}
    for label, module in (("base", base), ("spliced", block)):
        states = hidden.clone().requires_grad_(True)
        output, bias, _ = module(states, score_scale=3.0)
        (output.square().sum() + bias.sum()).backward()
        outputs[label] = (output.detach(), bias.detach(), states.grad)

    assert seen[0]["score_scale"] == 3.0
    for got, want in zip(outputs["spliced"], outputs["base"]):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    base_grads = dict(base.named_parameters())
    copies = model.surgery.adapters.default.base        # the block reads the adapter's copies of its layer norms
    for name, parameter in block.named_parameters():
        if not name.startswith("spliced."):
            key = f"encoder-block-0-{name.replace('.', '-')}"
            read = copies[key] if key in copies else parameter
            assert read is parameter or parameter.grad is None, name
            torch.testing.assert_close(read.grad, base_grads[name].grad, rtol=0, atol=1e-6, msg=name)


def test_a_keyword_given_twice_fails_as_in_eager_mode():
    base_model = tiny_model("v1.0")
    model = identity_spliced_copy(base_model)
    hidden = torch.randn(1, 4, 64)
    # T5LayerSelfAttention passes `mask=` itself and its **kwargs to the attention: twice.
    for block in (base_model.encoder.block[0], model.encoder.block[0]):
        with pytest.raises(TypeError, match="multiple values for keyword argument 'mask'"):
            block(hidden, mask=None)


@pytest.mark.parametrize("variant", ["v1.0", "v1.1"])
@pytest.mark.parametrize("spliced_in, then", [("eval", "train"), ("train", "eval")])
def test_t5_spliced_in_one_mode_computes_like_the_base_in_the_other(variant, batch, spliced_in, then):
    base = tiny_model(variant, dropout_rate=0.2)
    getattr(base, spliced_in)()
    model = identity_spliced_copy(base)
    base, model = getattr(base, then)(), getattr(model, then)()
    assert_same_loss_and_gradients(loss_and_gradients(model, batch), loss_and_gradients(base, batch))


def with_functional_dropout(model: nn.Module) -> nn.Module:
    for stack in (model.encoder, model.decoder):
        for block in stack.block:
            block.layer[-1].__class__ = FunctionalDropoutFF
    return model


@pytest.mark.parametrize("spliced_in, then", [("eval", "train"), ("train", "eval")])
def test_training_flag_of_an_inlined_sublayer_is_read_when_the_block_runs(batch, monkeypatch, spliced_in, then):
    base = with_functional_dropout(tiny_model("v1.0", dropout_rate=0.3))
    getattr(base, spliced_in)()
    # Its feed-forward output now reaches the residual add through a function, not a dropout
    # module, so the adapters go after self-attention only.
    model = identity_spliced_copy(base, {**surgery.load_recipe("adapter").source, "sites": ["after_self_attention"]})
    assert "training" in model.encoder.block[0].surgery_graph_code()  # the flag is read, not frozen
    traces = count_traces(monkeypatch)
    base, model = getattr(base, then)(), getattr(model, then)()

    expected = loss_and_gradients(base, batch)
    assert_same_loss_and_gradients(loss_and_gradients(model, batch), expected)
    # Dropout in the feed-forward sublayer matters: in the other mode the loss differs.
    other = getattr(base, spliced_in)()
    assert not torch.allclose(loss_and_gradients(other, batch)[0], expected[0], atol=1e-4)
    assert traces == []  # switching modes re-traced nothing


def test_only_a_dtype_change_retraces(batch, monkeypatch):
    base = tiny_model("v1.0", attn_implementation=SCALED_KERNEL, dropout_rate=0.2)
    model = identity_spliced_copy(base)
    traces = count_traces(monkeypatch)
    for mode in ("train", "eval", "train"):
        getattr(model, mode)()
        loss_and_gradients(model, batch, score_scale=0.5)
    assert traces == []

    base.train()  # as the model is now: dropout on, the same draws under the same seed
    base.to(torch.float64)
    model.to(torch.float64)
    expected = loss_and_gradients(base, batch, score_scale=0.5)
    actual = loss_and_gradients(model, batch, score_scale=0.5)
    assert actual[0].dtype == torch.float64
    assert_same_loss_and_gradients(actual, expected, atol=1e-12)
    spliced_blocks = ["encoder.block.0", "encoder.block.1", "decoder.block.0", "decoder.block.1"]
    assert sorted(traces) == sorted(f"{name} torch.float64" for name in spliced_blocks)  # once each, then cached
    assert model.encoder.block[0]._surgery_dtype == torch.float64


def test_bfloat16_after_surgery_retraces_and_matches(batch):
    base = tiny_model("v1.0")
    model = identity_spliced_copy(base)
    base.to(torch.bfloat16)
    model.to(torch.bfloat16)
    expected = loss_and_gradients(base, batch)
    actual = loss_and_gradients(model, batch)
    assert model.encoder.block[0]._surgery_dtype == torch.bfloat16
    torch.testing.assert_close(actual[0], expected[0], rtol=0, atol=0)
    for name, grad in expected[1].items():
        torch.testing.assert_close(actual[1][name], grad, msg=name)  # bfloat16's default tolerances
