"""The initialisation check: a recipe must not make a model's outputs non-finite before any training.

Option ranges (`surgery.options`) bound each initialisation scale, but whether a scale blows up
depends on the model too (its sizes, its dtype: float16 overflows at 65,504). So `surgery.apply`
runs the model once on a one-token input before and after the change: where the base's outputs
are finite and the spliced model's are not (NaN or ±inf), the recipe is refused with a
`RecipeError` naming its initialisation options, and the model is put back as it was.

The probe runs in eval mode under `torch.no_grad`, draws no random numbers, and leaves every
module's train/eval mode as it was. A model the probe cannot run (a class whose forward needs
other inputs) is not checked.

>>> import surgery
>>> from transformers import T5Config, T5ForConditionalGeneration
>>> model = T5ForConditionalGeneration(T5Config(d_model=64, d_kv=16, d_ff=128, num_layers=1, num_heads=4, vocab_size=50))
>>> finite_outputs(model)
True
>>> surgery.apply(model, {"method": "adapter", "sites": ["after_ffn"], "options": {"dense_init_std": 1e30}})
Traceback (most recent call last):
...
surgery.errors.RecipeError: recipe key 'options': {'dense_init_std': 1e+30} makes the model's outputs non-finite (NaN or inf) at initialisation, before any training; valid: smaller initialisation scales (the method's defaults are finite)
>>> hasattr(model, "surgery")
False
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from .errors import RecipeError


def _probe_inputs(model: nn.Module) -> dict[str, torch.Tensor] | None:
    """One token for the encoder (the end-of-sequence token, which classification heads look for) and,
    for an encoder-decoder, one for the decoder; None where the forward takes no input_ids."""
    accepted = inspect.signature(model.forward).parameters
    if "input_ids" not in accepted:
        return None
    config = getattr(model, "config", None)
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    device = embeddings.weight.device if embeddings is not None else next(model.parameters()).device
    eos = getattr(config, "eos_token_id", None)
    eos = eos if isinstance(eos, int) else 1
    inputs = {"input_ids": torch.tensor([[eos]], device=device)}
    if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in accepted:
        start = getattr(config, "decoder_start_token_id", None)
        inputs["decoder_input_ids"] = torch.tensor([[start if isinstance(start, int) else 0]], device=device)
    if "use_cache" in accepted:
        inputs["use_cache"] = False
    return inputs


def _floats(output: Any) -> list[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        return [output] if output.is_floating_point() else []
    values = output.values() if isinstance(output, dict) else output if isinstance(output, (tuple, list)) else ()
    return [t for value in values for t in _floats(value)]


def finite_outputs(model: nn.Module) -> bool | None:
    """Whether the model's outputs on a one-token input are all finite (None: it cannot be probed)."""
    if any(p.is_meta for p in model.parameters()):
        return None
    inputs = _probe_inputs(model)
    if inputs is None:
        return None
    modes = [(module, module.training) for module in model.modules()]
    try:
        model.eval()
        with torch.no_grad():
            output = model(**inputs)
    except Exception:  # noqa: BLE001 - a class the probe does not know how to call: not checked
        return None
    finally:
        for module, training in modes:
            module.training = training
    return all(bool(torch.isfinite(t).all()) for t in _floats(output))


def refuse_non_finite_init(model: nn.Module, base_was_finite: bool | None, options: Any) -> None:
    """Raise a RecipeError if the base's outputs were finite and the spliced model's are not."""
    if not base_was_finite:
        return
    if finite_outputs(model) is False:
        try:
            defaults = type(options)()
        except TypeError:
            defaults = None
        given = {name: value for name, value in vars(options).items()
                 if isinstance(value, float) and value != getattr(defaults, name, None)}
        raise RecipeError("options", given or vars(options), valid="smaller initialisation scales (the method's defaults are finite)",
                          reason="makes the model's outputs non-finite (NaN or inf) at initialisation, before any training")
