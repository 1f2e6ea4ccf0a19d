"""Adapter-only checkpoints: the trained parameters, the recipe, and a fingerprint of the base.

A checkpoint folder holds

* ``t5_surgery_adapter.safetensors`` — every trained tensor once (a tensor several modules share,
  like Compacter's rule, is owned by one module and stored under that one name), and every
  tensor surgery added (a frozen rule too), so loading rebuilds the same function;
* ``t5_surgery_adapter.json`` — the recipe, the trained groups, their counts, the base
  fingerprint and the base model's name and revision where known;
* ``README.md`` — a model card (`surgery.model_card`): recipe, counts, how to load it.

The names are our own, so neither we nor PEFT mistake one format for the other: a PEFT folder
(``adapter_config.json`` with a ``peft_type``) given to `load_adapter` gets a message saying what
it is and what reads it. Folders of the first format (``adapter_model.safetensors`` +
``adapter_config.json`` with ``"format": "t5-surgery-adapter/1"``) still load.

Loading into a model of another architecture fails before anything is changed, naming the
fields that differ. Saving and loading see through DDP, FSDP1 and FSDP2 wrappers
(`surgery.distributed`); under FSDP every rank calls them, and rank 0 writes.
"""

from __future__ import annotations

import hashlib
import json
from math import prod
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .distributed import barrier, gather_full, is_sharded, load_full, original_class, rank, sharded_state, unwrap
from .errors import CheckpointError, SurgeryError
from .hub import resolve_folder
from .model_card import CARD_FILE, render_model_card
from .naming import STATE, is_added
from .plan import apply
from .quantization import logical_shape
from .report import Report

FORMAT = "t5-surgery-adapter/2"
WEIGHTS_FILE = "t5_surgery_adapter.safetensors"
CONFIG_FILE = "t5_surgery_adapter.json"
# The first format used PEFT's file names; it is still read.
LEGACY_FORMAT = "t5-surgery-adapter/1"
LEGACY_WEIGHTS_FILE = "adapter_model.safetensors"
LEGACY_CONFIG_FILE = "adapter_config.json"
_CONFIG_FIELDS = (
    "model_type", "d_model", "d_ff", "d_kv", "num_heads", "num_layers", "num_decoder_layers", "vocab_size",
    "feed_forward_proj", "tie_word_embeddings", "relative_attention_num_buckets", "relative_attention_max_distance",
)


def _clean(name: str) -> str:
    """A parameter name without FSDP1's wrapper segments."""
    return name.replace("_fsdp_wrapped_module.", "").replace("_checkpoint_wrapped_module.", "")


def parameter_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """Global shape of every parameter under the model's own names (also when wrapped or sharded)."""
    inner = unwrap(model)
    names = [_clean(name) for name, _ in inner.named_parameters()]
    if is_sharded(model):
        state = sharded_state(model)
        return {name: tuple(state[name].shape) for name in names}
    return {_clean(name): logical_shape(p) for name, p in inner.named_parameters()}


def base_fingerprint(model: nn.Module, shapes: dict[str, tuple[int, ...]] | None = None) -> dict[str, Any]:
    """Architecture of the base model: config fields, class, and a hash of its parameter shapes."""
    inner = unwrap(model)
    shapes = parameter_shapes(model) if shapes is None else shapes
    base_shapes = sorted((name, shape) for name, shape in shapes.items() if not is_added(name))
    digest = hashlib.sha256(repr(base_shapes).encode()).hexdigest()[:16]
    config = inner.config
    return {"model_class": original_class(inner).__name__, **{f: getattr(config, f, None) for f in _CONFIG_FIELDS},
            "parameter_shapes": digest}


def base_origin(model: nn.Module, revision: str | None = None) -> dict[str, Any]:
    """Where the base came from, when known: its Hub name or folder and its revision.

    transformers keeps the name given to `from_pretrained` (``config._name_or_path``) but not the
    revision; a folder inside the Hub cache (``models--owner--name/snapshots/<commit>``) tells both.
    """
    inner = unwrap(model)
    name = getattr(inner.config, "_name_or_path", "") or None
    origin: dict[str, Any] = {"name_or_path": name, "revision": revision}
    if name and Path(name).is_dir():
        origin["local"] = True
        parts = Path(name).resolve().parts
        if "snapshots" in parts[:-1]:
            at = len(parts) - 1 - parts[::-1].index("snapshots")
            if at >= 1 and parts[at - 1].startswith("models--") and at + 1 < len(parts):
                origin["repo_id"] = parts[at - 1][len("models--"):].replace("--", "/")
                origin["revision"] = revision or parts[at + 1]
    return origin


def _checkpoint_names(inner: nn.Module, state: nn.Module, include_frozen_added: bool = True) -> list[str]:
    """What a checkpoint holds: the trained parameters, and everything surgery added (parameters and
    persistent buffers; non-persistent ones, e.g. projections regenerated from a seed, stay out)."""
    trained = {name for names in state.groups.values() for name in names}
    names = [_clean(n) for n, _ in inner.named_parameters() if _clean(n) in trained or (include_frozen_added and is_added(_clean(n)))]
    persistent = {_clean(n) for n in inner.state_dict(keep_vars=True)}
    names += [_clean(n) for n, _ in inner.named_buffers() if is_added(_clean(n)) and _clean(n) in persistent]
    return list(dict.fromkeys(names))


def _surgery_state(inner: nn.Module) -> nn.Module:
    state = getattr(inner, STATE, None)
    if state is None:
        raise SurgeryError(f"no surgery was applied to this model ({type(inner).__name__}), so it has no adapter to save")
    return state


def write_adapter(model: nn.Module, directory: str | Path, kind: str = "adapter", base_revision: str | None = None) -> Path:
    """`save_adapter` with the folder's kind for the model card: "adapter", or "model" (a save_pretrained folder)."""
    directory = Path(directory)
    inner = unwrap(model)
    state = _surgery_state(inner)
    names = _checkpoint_names(inner, state)
    if not names:
        raise CheckpointError(f"the model holds no trained or added tensor to save (recipe {state.recipe.get('name')!r}); "
                              "an empty adapter would load as a silently different model")
    sharded = is_sharded(model)
    if sharded:  # gather only the adapter's tensors, never the frozen base
        full_state = sharded_state(model)
        shapes = {_clean(n): tuple(full_state[_clean(n)].shape) for n, _ in inner.named_parameters()}
        tensors = gather_full(full_state, names)
    else:
        values = {**{_clean(n): p for n, p in inner.named_parameters()}, **{_clean(n): b for n, b in inner.named_buffers()}}
        shapes = {_clean(n): logical_shape(p) for n, p in inner.named_parameters()}
        tensors = {name: values[name].detach().to("cpu").contiguous() for name in names}
    if tensors is None or (sharded and rank() != 0):
        barrier()  # rank 0 writes; the others wait so the folder is complete when they return
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, directory / WEIGHTS_FILE, metadata={"format": FORMAT})
    record = {
        "format": FORMAT, "library": "t5-surgery", "kind": kind, "recipe": state.recipe, "groups": state.groups,
        "counts": {group: sum(tensors[n].numel() for n in members if n in tensors) for group, members in state.groups.items()},
        "tensors": len(tensors),
        "base_parameters": sum(prod(shape) for name, shape in shapes.items() if not is_added(name)),
        "base": base_fingerprint(inner, shapes), "base_model": base_origin(inner, base_revision),
    }
    (directory / CONFIG_FILE).write_text(json.dumps(record, indent=2, default=str))
    (directory / CARD_FILE).write_text(render_model_card(json.loads(json.dumps(record, default=str)), str(directory)))
    if sharded:
        barrier()
    return directory


def save_adapter(model: nn.Module, directory: str | Path, base_revision: str | None = None) -> Path:
    """Write the trained parameters, the recipe, the base fingerprint and a model card to `directory`.

    `model` may be wrapped (DDP, FSDP1, FSDP2); under FSDP call this on every rank. `base_revision`:
    the base model's Hub revision, recorded when transformers does not know it.

    >>> import surgery, tempfile
    >>> from transformers import T5Config, T5ForConditionalGeneration
    >>> config = T5Config(d_model=128, d_kv=16, d_ff=256, num_layers=2, num_heads=4, vocab_size=100)
    >>> model = T5ForConditionalGeneration(config); _ = surgery.apply(model, "compacter")
    >>> folder = surgery.save_adapter(model, tempfile.mkdtemp())
    >>> sorted(p.name for p in folder.iterdir())
    ['README.md', 't5_surgery_adapter.json', 't5_surgery_adapter.safetensors']
    >>> fresh = T5ForConditionalGeneration(config)
    >>> surgery.load_adapter(fresh, folder).trainable == surgery.report(model).trainable
    True
    """
    return write_adapter(model, directory, "adapter", base_revision)


def _peft_message(path: Path, config: dict[str, Any]) -> str:
    return (f"{path.parent} is a PEFT adapter (peft_type {config.get('peft_type')!r}, base model "
            f"{config.get('base_model_name_or_path')!r}), not a t5-surgery adapter: load it with PEFT "
            "(peft.PeftModel.from_pretrained(model, folder)). t5-surgery adapters hold "
            f"{CONFIG_FILE} and {WEIGHTS_FILE}")


def read_adapter_config(directory: str | Path) -> dict[str, Any]:
    """The JSON record of an adapter folder (either format), or a CheckpointError saying what the folder is."""
    directory = Path(directory)
    path = directory / CONFIG_FILE
    if path.is_file():
        config = json.loads(path.read_text())
        if config.get("format") != FORMAT:
            raise CheckpointError(f"{path}: format {config.get('format')!r} is not {FORMAT!r}")
        return config
    legacy = directory / LEGACY_CONFIG_FILE
    if legacy.is_file():
        config = json.loads(legacy.read_text())
        if config.get("format") == LEGACY_FORMAT:
            return config
        if "peft_type" in config:
            raise CheckpointError(_peft_message(legacy, config))
        raise CheckpointError(f"{legacy} is neither a t5-surgery adapter (no \"format\": {FORMAT!r}) nor a PEFT one (no peft_type)")
    hint = ("; it holds a transformers model (config.json): load it with from_pretrained"
            if (directory / "config.json").is_file() else "")
    raise CheckpointError(f"{path} does not exist: not an adapter checkpoint folder (expected {CONFIG_FILE} "
                          f"and {WEIGHTS_FILE}){hint}")


def _weights_file(directory: Path, config: dict[str, Any]) -> Path:
    return directory / (LEGACY_WEIGHTS_FILE if config.get("format") == LEGACY_FORMAT else WEIGHTS_FILE)


def load_adapter(model: nn.Module, directory: str | Path, revision: str | None = None) -> Report:
    """Apply the checkpoint's recipe to `model` (unless already applied) and load its tensors.

    `directory` is a folder or a Hub repo id (downloaded with `huggingface_hub`, at `revision`).
    Fails before changing anything when the base architecture differs from the checkpoint's. A
    wrapped model (DDP, FSDP) must have had the recipe applied before it was wrapped.
    """
    from .plan import report

    directory = resolve_folder(directory, revision)
    config = read_adapter_config(directory)
    inner, sharded = unwrap(model), is_sharded(model)
    shapes = parameter_shapes(model)
    expected, found = config["base"], base_fingerprint(inner, shapes)
    differences = [f"{key}: checkpoint {expected.get(key)!r}, model {found.get(key)!r}"
                   for key in expected if expected.get(key) != found.get(key)]
    if differences:
        raise CheckpointError(f"{directory} was saved from another base model; differences: " + "; ".join(differences))
    tensors = load_file(_weights_file(directory, config))
    state = getattr(inner, STATE, None)
    if state is None:
        if inner is not model or sharded:
            raise CheckpointError(f"the model is wrapped ({type(model).__name__}) and has no surgery yet: load the adapter "
                                  "(or apply its recipe) before wrapping it for DDP / FSDP")
        apply(model, config["recipe"])
        state = getattr(inner, STATE)
    elif state.recipe != config["recipe"]:
        raise CheckpointError(f"{directory} holds recipe {config['recipe'].get('name')!r}, "
                              f"but the model was given recipe {state.recipe.get('name')!r}")
    names = _checkpoint_names(inner, state, include_frozen_added=config.get("format") != LEGACY_FORMAT)
    missing, unexpected = sorted(set(names) - set(tensors)), sorted(set(tensors) - set(names))
    if missing or unexpected:
        raise CheckpointError(f"{directory}: tensors do not match the recipe's modules; missing {missing[:5]}, unexpected {unexpected[:5]}")
    shapes = {**parameter_shapes(model), **{_clean(n): tuple(b.shape) for n, b in inner.named_buffers()}}  # now with the modules
    for name in names:
        if tuple(tensors[name].shape) != shapes[name]:
            raise CheckpointError(f"{directory}: {name} has shape {tuple(tensors[name].shape)}, the model expects {shapes[name]}")
    if sharded:
        load_full(model, {name: tensors[name] for name in names})
        counts = {group: sum(tensors[n].numel() for n in members) for group, members in state.groups.items()}
        base = sum(prod(shape) for name, shape in shapes.items() if not is_added(name))
        added = sum(tensors[n].numel() for n in names if is_added(n))
        return Report(state.recipe.get("name", "custom"), counts, base, added)
    targets = {**dict(inner.named_parameters()), **dict(inner.named_buffers())}
    with torch.no_grad():
        for name in names:
            target = targets[name]
            target.copy_(tensors[name].to(device=target.device, dtype=target.dtype))
    return report(inner)
