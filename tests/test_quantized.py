"""bitsandbytes 8-bit and 4-bit bases (on CPU): adapter methods train; methods that would train or
rewrite the quantised weights are refused at plan time, naming why."""

from __future__ import annotations

import copy

import pytest
import torch

import surgery
from conftest import tiny_model
from surgery import RecipeError

bitsandbytes = pytest.importorskip("bitsandbytes")  # the `quantization` extra (setup.sh installs it)
from transformers import BitsAndBytesConfig, T5ForConditionalGeneration  # noqa: E402

QUANTIZATION = {
    "8-bit": BitsAndBytesConfig(load_in_8bit=True),
    "4-bit": BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.float32),
}


@pytest.fixture(scope="module")
def base_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("float-base")
    tiny_model(d_model=128, d_kv=16, seed=3).save_pretrained(folder)
    return folder


def quantized(folder, kind: str) -> torch.nn.Module:
    return T5ForConditionalGeneration.from_pretrained(folder, quantization_config=QUANTIZATION[kind], device_map="cpu",
                                                      attn_implementation="eager")


def one_step(model) -> float:
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(3, 96, (2, 7), generator=generator)
    labels = torch.randint(3, 96, (2, 4), generator=generator)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    loss = model.train()(input_ids=input_ids, labels=labels).loss
    loss.backward()
    optimizer.step()
    return loss.item()


@pytest.mark.parametrize("kind", ["8-bit", "4-bit"])
@pytest.mark.parametrize("recipe", ["compacter++", "adapter", "prompt-tuning-r"])
def test_adapter_methods_train_a_step_on_a_quantised_base(base_folder, kind, recipe):
    model = quantized(base_folder, kind)
    layer = model.encoder.block[0].layer[0].SelfAttention.q
    assert type(layer).__module__.startswith("bitsandbytes") and not layer.weight.is_floating_point()
    report = surgery.report(surgery.apply(model, recipe))
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    trained = {name for name, p in model.named_parameters() if p.requires_grad}
    assert report.trainable == sum(before[n].numel() for n in trained) > 0
    assert all(before[n].is_floating_point() for n in trained)
    loss = one_step(model)
    assert torch.isfinite(torch.tensor(loss))
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed == trained          # every trained tensor moved; no quantised weight did


@pytest.mark.parametrize("kind", ["8-bit", "4-bit"])
def test_an_adapter_trained_on_a_quantised_base_loads_into_the_float_base(base_folder, kind, tmp_path):
    model = quantized(base_folder, kind)
    surgery.apply(model, "compacter++")
    one_step(model)
    folder = surgery.save_adapter(model, tmp_path / "adapter")
    full_precision = T5ForConditionalGeneration.from_pretrained(base_folder, attn_implementation="eager")
    surgery.load_adapter(full_precision, folder)   # 4-bit shapes are compared as the shapes they stand for
    trained = {n: p for n, p in model.named_parameters() if p.requires_grad}
    for name, parameter in full_precision.named_parameters():
        if name in trained:
            torch.testing.assert_close(parameter, trained[name].detach(), rtol=0, atol=0)


REFUSED = [
    ("bitfit", r"'method': 'bitfit' gives each linear layer of the blocks a bias in the dtype of its weight, but 28 of them "
               r"\(e\.g\. encoder\.block\.0\.layer\.0\.SelfAttention\.q\) are bitsandbytes-quantised"),
    ("full-finetune", r"'method': 'full-finetune' trains every weight, but this is a base quantised by bitsandbytes .* "
                      r"integer weights have no gradients"),
    ("intrinsic-said", r"'method': 'intrinsic-said' reparametrises every weight tensor, but it could cover only 19 of the 47"),
    ({"method": "adapter", "sites": ["after_ffn"], "train": ["all"]},
     r"'train': 'all' would train 28 integer tensors .* quantised weights cannot be trained"),
]


@pytest.mark.parametrize("kind", ["8-bit", "4-bit"])
def test_methods_that_would_train_quantised_weights_are_refused(base_folder, kind):
    model = quantized(base_folder, kind)
    before = copy.deepcopy(model.state_dict())
    for recipe, reason in REFUSED:
        with pytest.raises(RecipeError, match=reason):
            surgery.plan(model, recipe)
        with pytest.raises(RecipeError, match=reason):
            surgery.apply(model, recipe)
    assert not hasattr(model, "surgery")
    assert all(torch.equal(t, before[n]) for n, t in model.state_dict().items())


def test_a_validation_pass_does_not_stop_the_gradient_through_4_bit_layers(base_folder):
    # bitsandbytes repacks a 4-bit weight for a CPU kernel without autograd on its first eval-mode call
    # (on AVX512-BF16 CPUs); after that nothing before the layer (T5's encoder) got a gradient.
    model = quantized(base_folder, "4-bit")
    surgery.apply(model, "adapter")
    with torch.no_grad():
        model.eval()(input_ids=torch.tensor([[5, 6, 7]]), labels=torch.tensor([[8, 9]]))  # a validation pass
    one_step(model)
    encoder = {n: p.grad for n, p in model.named_parameters() if p.requires_grad and n.startswith("encoder.")}
    assert encoder and all(g is not None and bool(g.abs().sum() > 0) for g in encoder.values())


def test_a_base_repacked_before_the_adapter_is_added_gets_a_warning(base_folder):
    model = quantized(base_folder, "4-bit")
    layer = model.encoder.block[0].layer[0].SelfAttention.q
    if not getattr(layer, "support_avx512bf16_for_cpu", False):
        pytest.skip("bitsandbytes repacks 4-bit weights only on CPUs with AVX512-BF16")
    with torch.no_grad():
        model.eval()(input_ids=torch.tensor([[5, 6, 7]]), labels=torch.tensor([[8, 9]]))
    with pytest.warns(UserWarning, match=r"4-bit layers of this base \(e\.g\. .*\) were repacked .* will not train"):
        surgery.apply(model, "adapter")
