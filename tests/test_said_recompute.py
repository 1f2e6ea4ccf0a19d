"""Issue 27: Intrinsic-SAID recomputes θ = θ₀ + λ·P·z in the backward instead of letting its consumer keep it
(methods.said_recompute.RecomputeInBackward) — the same gradients as keeping θ, no θ held between forward and
backward, and an in-place change in between refused."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import methods.intrinsic_said as said
import methods.said_recompute as recompute
import surgery
from conftest import tiny_model


def said_model(version: int = 3, variant: str = "v1.0") -> nn.Module:
    model = tiny_model(variant)
    surgery.apply(model, {"method": "intrinsic_said", "options": {"dimension": 300, "seed": 5, "fastfood_version": version}})
    with torch.no_grad():
        model.surgery.adapters.default.intrinsic.z.normal_(std=0.1, generator=torch.Generator().manual_seed(3))
        model.surgery.adapters.default.intrinsic.scales.uniform_(0.5, 2.0, generator=torch.Generator().manual_seed(4))
    return model.train()


def gradients(model: nn.Module, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    model.zero_grad()
    model(**batch).loss.backward()
    return model.surgery.adapters.default.intrinsic.z.grad.clone(), model.surgery.adapters.default.intrinsic.scales.grad.clone()


@pytest.mark.parametrize("version", [1, 3])
@pytest.mark.parametrize("variant", ["v1.0", "v1.1"])
def test_recomputing_theta_gives_the_gradients_of_keeping_it(version, variant, batch, monkeypatch):
    model = said_model(version, variant)
    recomputed = gradients(model, batch)
    monkeypatch.setattr(said, "recompute_in_backward", lambda *arguments: None)  # the consumer keeps θ
    kept = gradients(model, batch)
    assert torch.equal(recomputed[0], kept[0]) and torch.equal(recomputed[1], kept[1])
    assert (recomputed[1] != 0).all()


def test_no_theta_of_a_block_or_more_is_kept_for_the_backward(batch, monkeypatch):
    """Every linear weight (≥ L entries) is packed as a recipe, not a tensor; layer norms (< L) are kept."""
    model = said_model()
    packed: list[object] = []
    real_pack = recompute.RecomputeInBackward.pack

    def spy(self, tensor):
        packed.append(result := real_pack(self, tensor))
        return result

    monkeypatch.setattr(recompute.RecomputeInBackward, "pack", spy)
    loss = model(**batch).loss
    remade = [p for p in packed if isinstance(p, recompute.SavedTheta)]
    names = model.surgery.adapters.default.intrinsic.tensor_names
    linear_weights = {name for name, module in model.named_modules() if isinstance(module, nn.Linear)
                      and module is not model.lm_head}
    assert {names[p.index].rsplit(".", 1)[0] for p in remade} == linear_weights
    assert not any(isinstance(p, torch.Tensor) and p.numel() == 64 * 64 and p.requires_grad and p.grad_fn is not None
                   and p.dim() == 2 for p in packed)  # no q/k/v/o θ (64×64) kept as a tensor
    loss.backward()


def test_changing_z_or_theta0_between_forward_and_backward_is_refused(batch):
    model = said_model()
    loss = model(**batch).loss
    with torch.no_grad():
        model.encoder.block[0].layer[0].SelfAttention.q.weight.add_(1.0)  # θ₀: only the recompute can notice
    with pytest.raises(RuntimeError, match="'encoder.block.0.layer.0.SelfAttention.q.weight'.*changed in place"):
        loss.backward()
    loss = model(**batch).loss
    with torch.no_grad():
        model.surgery.adapters.default.intrinsic.z.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation|changed in place"):
        loss.backward()


def open_calls(model: nn.Module) -> list:
    """Every call context the substitution hooks still hold (none between calls)."""
    from surgery.substitute import SubstituteTensors

    return [context for module in model.modules() for hook in module._forward_pre_hooks.values()
            if isinstance(hook, SubstituteTensors) for context in hook.open_calls]


def test_the_hooks_leave_nothing_behind_after_a_call_even_after_an_error(batch):
    model = said_model()
    model(**batch).loss.backward()
    assert not open_calls(model)
    with pytest.raises(Exception):
        model(input_ids=batch["input_ids"], labels=batch["labels"], decoder_input_ids=torch.full((3, 2), 10_000))
    assert not open_calls(model)
    assert not [m for m in model.modules() if "weight" in m.__dict__]   # every substitute taken out again
    grads = gradients(model, batch)  # and the next step still works
    assert (grads[1] != 0).all()
