"""The method contract as a third party sees it: a `SiteMethod` and a `ModelMethod` defined and
registered here plan and apply through the engine alone; a method that is neither is refused; the
option marked `SIZE` is the one an allocation failure names; a plug-in's recipe gets the runner's
default learning rate; and no bundled method imports an engine module outside the public surface."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

import surgery
import surgery.budget
from conftest import tiny_model
from runners.finetune.protocol import DEFAULT_LEARNING_RATE, paper_defaults
from runners.tasks import get_task
from surgery import RecipeError
from surgery.method import METHODS, Method, ModelMethod, SiteContext, SiteMethod, register_method
from surgery.options import SIZE, Annotated, Range
from test_layout import ROOT, imported_modules, project_modules

# What surgery/method.py's docstring promises a method may import from the engine.
PUBLIC_SURFACE = {"surgery.method", "surgery.adapter_scope", "surgery.errors", "surgery.options", "surgery.family",
                  "surgery.substitute"}


class SharedGain(nn.Module):
    """One scalar shared by every site module (zero: the sites change nothing)."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.zeros(()))


class Bottleneck(nn.Module):
    """x + gain · up(down(x)): a residual bottleneck of `width`, scaled by the shared gain."""

    def __init__(self, hidden: int, width: int, shared: SharedGain) -> None:
        super().__init__()
        self.down, self.up = nn.Linear(hidden, width), nn.Linear(width, hidden)
        self.shared = [shared]  # a plain list: the shared module is owned once, by the model

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, d_model) → (B, T, d_model)
        return x + self.shared[0].gain * self.up(self.down(x))


@dataclass
class BottleneckOptions:
    width: Annotated[int, Range(minimum=1), SIZE] = 4
    seed: Annotated[int, Range(minimum=0)] = 0


class ThirdPartyBottleneck(SiteMethod):
    name = "contract-test-bottleneck"
    Options = BottleneckOptions

    def build_shared(self, dims):
        return SharedGain()

    def build_site_module(self, site: SiteContext, shared):
        return Bottleneck(site.dims.hidden_size, self.options.width, shared)


class ScaleEncoderInput:
    """Encoder pre-hook: the encoder reads its input embeddings times a trained vector while the adapter is in effect."""

    def __init__(self, embeddings: nn.Module, scale: nn.Parameter, scope) -> None:
        self.embeddings, self.scale, self.scope = embeddings, scale, scope

    def __call__(self, module, args, kwargs):
        if not self.scope.is_active() or kwargs.get("input_ids") is None:
            return None
        return args, {**kwargs, "input_ids": None, "inputs_embeds": self.embeddings(kwargs["input_ids"]) * self.scale}


class ThirdPartyEmbeddingScale(ModelMethod):
    name = "contract-test-embedding-scale"

    def transform_model(self, model, family, dims, scope) -> None:
        holder = nn.Module()
        holder.scale = nn.Parameter(torch.ones(dims.hidden_size))
        scope.container.add_module("embedding_scale", holder)
        encoder = model.get_submodule(family.stack_paths(model)["encoder"])
        hook = ScaleEncoderInput(model.get_input_embeddings(), holder.scale, scope)
        scope.keep(encoder.register_forward_pre_hook(hook, with_kwargs=True))

    def trainable_groups(self, model, family, scope):
        return {"embedding scale": [scope.path("embedding_scale.scale")]}


@pytest.fixture
def third_party_methods():
    for method in (ThirdPartyBottleneck, ThirdPartyEmbeddingScale):
        register_method(method)
    yield
    for method in (ThirdPartyBottleneck, ThirdPartyEmbeddingScale):
        METHODS.pop(method.name, None)


def _batch(vocab: int = 100) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {"input_ids": torch.randint(2, vocab, (2, 7), generator=generator),
            "labels": torch.randint(2, vocab, (2, 3), generator=generator)}


def _trainable(model: nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_a_third_party_site_method_plans_and_applies(third_party_methods):
    model, base = tiny_model().eval(), tiny_model().eval()
    recipe = {"method": ThirdPartyBottleneck.name, "sites": ["after_ffn"], "options": {"width": 3}}
    planned = surgery.plan(model, recipe)
    layers = model.config.num_layers + model.config.num_decoder_layers
    d = model.config.d_model
    assert len(planned.splices) == layers and {s.site for s in planned.splices} == {"after_ffn"}
    assert planned.groups == {"inserted modules": layers * (d * 3 + 3 + 3 * d + d), "shared": 1}
    surgery.apply(model, planned)
    batch = _batch()
    # Gain 0: the base's function, to the bit; the base frozen, only the added tensors train.
    assert torch.equal(model(**batch).logits, base(**batch).logits)
    assert _trainable(model) == {n for n, _ in model.named_parameters() if ".spliced." in n} | {"surgery.adapters.default.shared.gain"}
    model(**batch).loss.backward()
    assert model.surgery.adapters.default.shared.gain.grad is not None and model.surgery.adapters.default.shared.gain.grad.abs() > 0
    with torch.no_grad():
        model.surgery.adapters.default.shared.gain.fill_(0.5)
    assert not torch.allclose(model(**batch).logits, base(**batch).logits)


def test_a_third_party_model_method_plans_and_applies(third_party_methods):
    model, base = tiny_model().eval(), tiny_model().eval()
    recipe = {"method": ThirdPartyEmbeddingScale.name}
    planned = surgery.plan(model, recipe)
    assert planned.splices == [] and planned.groups == {"embedding scale": model.config.d_model}
    surgery.apply(model, planned)
    assert _trainable(model) == {"surgery.adapters.default.embedding_scale.scale"}
    scale = torch.linspace(0.5, 1.5, model.config.d_model)
    with torch.no_grad():
        model.surgery.adapters.default.embedding_scale.scale.copy_(scale)
    batch = _batch()
    output = model(**batch)
    output.loss.backward()
    # Reference, written plainly on the unmodified model: the encoder reads the scaled embeddings.
    reference_scale = scale.clone().requires_grad_(True)
    embedded = base.get_input_embeddings()(batch["input_ids"]) * reference_scale
    reference = base(inputs_embeds=embedded, labels=batch["labels"])
    reference.loss.backward()
    torch.testing.assert_close(output.logits, reference.logits)
    torch.testing.assert_close(model.surgery.adapters.default.embedding_scale.scale.grad, reference_scale.grad)
    with surgery.disabled(model):
        assert torch.equal(model(**batch).logits, base(**batch).logits)


def test_each_kind_keeps_its_own_recipe_keys(third_party_methods):
    model = tiny_model()
    with pytest.raises(RecipeError, match="inserts nothing at sites"):
        surgery.plan(model, {"method": ThirdPartyEmbeddingScale.name, "sites": ["after_ffn"]})
    with pytest.raises(RecipeError, match="inserts modules at sites"):
        surgery.plan(model, {"method": ThirdPartyBottleneck.name, "sites": []})


def test_a_method_of_neither_kind_cannot_be_registered():
    class Neither(Method):
        name = "contract-test-neither"

    with pytest.raises(TypeError, match="SiteMethod.*ModelMethod"):
        register_method(Neither)
    assert Neither.name not in METHODS


def test_the_option_marked_size_is_named_when_the_recipe_does_not_fit(third_party_methods, monkeypatch):
    model = tiny_model()
    monkeypatch.setattr(surgery.budget, "free_bytes", lambda device: 1024)
    for options in ({}, {"width": 64, "seed": 3}):
        with pytest.raises(RecipeError) as error:
            surgery.plan(model, {"method": ThirdPartyBottleneck.name, "sites": ["after_ffn"], "options": options})
        assert error.value.key == "options.width" and "1.0 KiB free on cpu" in str(error.value)
    assert not hasattr(model, "surgery")


def test_the_size_option_named_is_the_one_the_recipe_changed():
    """compacter++ spells out reduction_factor 32 and rank 1 (the defaults): of n 2 (the tiny model's bottleneck
    is 2) and an oversized rank, both changed, the rank is declared first and named."""
    with pytest.raises(RecipeError) as error:
        surgery.plan(tiny_model(), "compacter++", overrides={"options.n": 2, "options.rank": 10**15})
    assert error.value.key == "options.rank" and error.value.value == 10**15


def test_a_plug_ins_recipe_gets_the_runners_default_learning_rate(third_party_methods):
    recipe = {"method": ThirdPartyBottleneck.name, "sites": ["after_ffn"]}
    for task in ("rte", "embedded-sst2"):
        defaults = paper_defaults(get_task(task), recipe)
        assert defaults["learning_rate"] == DEFAULT_LEARNING_RATE == 3e-4
        assert "none of the paper's methods" in defaults["sources"]["learning_rate"]


def test_methods_import_only_the_public_surface_of_the_engine():
    modules = project_modules()
    outside = sorted((name, target) for name, path in modules.items() if name.split(".")[0] == "methods"
                     for target in imported_modules(name, path, modules)
                     if target.split(".")[0] == "surgery" and target not in PUBLIC_SURFACE)
    assert not outside, "methods importing engine internals:\n" + "\n".join(f"{s} imports {t}" for s, t in outside)
    # The scan sees the bundled methods' engine imports (a resolver that saw none would pass vacuously) ...
    seen = {t for n, p in modules.items() if n.startswith("methods.") for t in imported_modules(n, p, modules)}
    assert {"surgery.method", "surgery.options", "surgery.errors"} <= seen
    # ... and the surface it enforces is the one surgery.method documents.
    assert all(f"`{module}`" in surgery.method.__doc__ for module in PUBLIC_SURFACE - {"surgery.method"})
    assert (ROOT / "methods").is_dir()
