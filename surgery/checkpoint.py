"""Adapter-only checkpoints: the trained parameters, the recipe, and a fingerprint of the base.

A checkpoint folder holds

* ``adapter_model.safetensors`` — every trained tensor once (a tensor several modules share,
  like Compacter's rule, is owned by one module and stored under that one name);
* ``adapter_config.json`` — the recipe, the trained groups and the base fingerprint.

Loading into a model of another architecture fails before anything is changed, naming the
fields that differ.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .errors import CheckpointError, SurgeryError
from .naming import STATE, is_added
from .plan import apply
from .report import Report

FORMAT = "t5-surgery-adapter/1"
WEIGHTS_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"
_CONFIG_FIELDS = (
    "model_type", "d_model", "d_ff", "d_kv", "num_heads", "num_layers", "num_decoder_layers", "vocab_size",
    "feed_forward_proj", "tie_word_embeddings", "relative_attention_num_buckets", "relative_attention_max_distance",
)


def base_fingerprint(model: nn.Module) -> dict[str, Any]:
    """Architecture of the base model: config fields, class, and a hash of its parameter shapes."""
    shapes = sorted(
        (name, tuple(p.shape)) for name, p in model.named_parameters() if not is_added(name)
    )
    digest = hashlib.sha256(repr(shapes).encode()).hexdigest()[:16]
    config = model.config
    return {"model_class": type(model).__name__, **{f: getattr(config, f, None) for f in _CONFIG_FIELDS}, "parameter_shapes": digest}


def _adapter_state(model: nn.Module) -> dict[str, torch.Tensor]:
    state = getattr(model, STATE, None)
    if state is None:
        raise SurgeryError("no surgery was applied to this model, so it has no adapter to save")
    trained = {name for names in state.groups.values() for name in names}
    tensors = {name: p for name, p in model.named_parameters() if name in trained}
    # Persistent buffers that added modules need to reproduce their function; non-persistent
    # ones (e.g. projections regenerated from a seed) stay out, as in `state_dict`.
    persistent = set(model.state_dict(keep_vars=True))
    for name, buffer in model.named_buffers():
        if is_added(name) and name in persistent:
            tensors[name] = buffer
    return tensors


def save_adapter(model: nn.Module, directory: str | Path) -> Path:
    """Write the trained parameters, the recipe and the base fingerprint to `directory`.

    >>> import surgery, tempfile
    >>> from transformers import T5Config, T5ForConditionalGeneration
    >>> config = T5Config(d_model=128, d_kv=16, d_ff=256, num_layers=2, num_heads=4, vocab_size=100)
    >>> model = T5ForConditionalGeneration(config); _ = surgery.apply(model, "compacter")
    >>> folder = surgery.save_adapter(model, tempfile.mkdtemp())
    >>> fresh = T5ForConditionalGeneration(config)
    >>> surgery.load_adapter(fresh, folder).trainable == surgery.report(model).trainable
    True
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in _adapter_state(model).items()}
    save_file(tensors, directory / WEIGHTS_FILE, metadata={"format": FORMAT})
    state = getattr(model, STATE)
    config = {"format": FORMAT, "recipe": state.recipe, "groups": state.groups, "base": base_fingerprint(model)}
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=str))
    return directory


def read_adapter_config(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist: not an adapter checkpoint folder (expected {CONFIG_FILE} and {WEIGHTS_FILE})")
    config = json.loads(path.read_text())
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{path}: format {config.get('format')!r} is not {FORMAT!r}")
    return config


def load_adapter(model: nn.Module, directory: str | Path) -> Report:
    """Apply the checkpoint's recipe to `model` (unless already applied) and load its tensors.

    Fails before changing anything when the base architecture differs from the checkpoint's.
    """
    from .plan import report

    directory = Path(directory)
    config = read_adapter_config(directory)
    expected, found = config["base"], base_fingerprint(model)
    differences = [f"{key}: checkpoint {expected.get(key)!r}, model {found.get(key)!r}"
                   for key in expected if expected.get(key) != found.get(key)]
    if differences:
        raise CheckpointError(f"{directory} was saved from another base model; differences: " + "; ".join(differences))
    tensors = load_file(directory / WEIGHTS_FILE)
    state = getattr(model, STATE, None)
    if state is None:
        apply(model, config["recipe"])
    elif state.recipe != config["recipe"]:
        raise CheckpointError(f"{directory} holds recipe {config['recipe'].get('name')!r}, "
                              f"but the model was given recipe {state.recipe.get('name')!r}")
    targets = _adapter_state(model)
    missing, unexpected = sorted(set(targets) - set(tensors)), sorted(set(tensors) - set(targets))
    if missing or unexpected:
        raise CheckpointError(f"{directory}: tensors do not match the recipe's modules; missing {missing[:5]}, unexpected {unexpected[:5]}")
    with torch.no_grad():
        for name, target in targets.items():
            source = tensors[name]
            if source.shape != target.shape:
                raise CheckpointError(f"{directory}: {name} has shape {tuple(source.shape)}, the model expects {tuple(target.shape)}")
            target.copy_(source.to(device=target.device, dtype=target.dtype))
    return report(model)
