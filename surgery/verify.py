"""Checks of an adapter checkpoint, separate from reading and writing files.

`surgery.checkpoint` reads the folder, then calls these before anything of the model changes:

* `check_config`    — the config has its fields, with the right types;
* `tensor_manifest` / `check_manifest` — what was saved is what is read: the same names and a
  SHA-256 of every tensor's dtype, shape and bytes (a flipped byte, a truncated or swapped file), and
  every floating-point value is finite;
* `check_layout`    — the tensors fit the modules the recipe makes on this model (names, shapes,
  floating-point where the model is);
* `recipe_differences` — for a model that already has a recipe applied: which keys differ;
* `record_digest` / `check_integrity` — the record itself (recipe, options, groups, the base's
  fingerprint: everything that decides the function) has a SHA-256 too. Files that say
  ``"integrity_version": 1`` must carry it and every field it covers; files written before it
  (no ``integrity_version``) still load, with what they lack not checked.

Each raises (or returns) messages that name the file and the tensor or key.

>>> import torch
>>> manifest = tensor_manifest({"w": torch.ones(2)})
>>> len(manifest["w"])
32
>>> check_manifest({"w": torch.tensor([1.0, float("nan")])}, manifest, "ckpt")
Traceback (most recent call last):
...
surgery.errors.CheckpointError: ckpt: tensor 'w' (float32 [2]) does not match its checksum (the file was changed or damaged after it was saved)
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch
from torch import nn

from .errors import CheckpointError, RecipeError
from .method import get_method_class
from .options import parse_options
from .recipe import Recipe, load_recipe, select_layers

REQUIRED_FIELDS: dict[str, type] = {"format": str, "recipe": dict, "base": dict}
# Version 1: the record's checksum, the base's forward-relevant config fields and its weight sample.
INTEGRITY_VERSION = 1
INTEGRITY_FIELDS: dict[str, type] = {"record_checksum": str, "base_weights": dict, "checksums": dict}


# Labels, not the function: editing them by hand (a clearer description, the base's path on this
# machine) is allowed; everything else of the record is covered by its checksum.
LABELS = ("record_checksum", "kind", "library", "base_model")
RECIPE_LABELS = ("name", "description")


def record_digest(record: dict[str, Any]) -> str:
    """SHA-256 of the record as JSON (keys sorted), leaving out the checksum itself and the labels.

    >>> record = {"recipe": {"name": "mine", "options": {"activation": "gelu"}}, "record_checksum": "..."}
    >>> record_digest(record) == record_digest({**record, "record_checksum": "other"})
    True
    >>> record_digest(record) == record_digest({"recipe": {"name": "renamed", "options": {"activation": "gelu"}}})
    True
    >>> record_digest(record) == record_digest({"recipe": {"name": "mine", "options": {"activation": "relu"}}})
    False
    """
    covered = {key: value for key, value in record.items() if key not in LABELS}
    if isinstance(covered.get("recipe"), dict):
        covered["recipe"] = {key: value for key, value in covered["recipe"].items() if key not in RECIPE_LABELS}
    text = json.dumps(covered, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_integrity(config: dict[str, Any], where: str, base_fields: tuple[str, ...]) -> None:
    """A record that claims an integrity version has every field it covers, and matches its checksum.

    A record without ``integrity_version`` was written before it and is not checked here.
    """
    version = config.get("integrity_version")
    if version is None:
        return
    if version != INTEGRITY_VERSION or isinstance(version, bool):
        raise CheckpointError(f"{where}: integrity_version {version!r} is not one this t5-surgery reads "
                              f"({INTEGRITY_VERSION}); it was written by another version of t5-surgery, or edited")
    for name, kind in INTEGRITY_FIELDS.items():
        if not isinstance(config.get(name), kind):
            found = "missing" if name not in config else f"holds {type(config[name]).__name__}"
            raise CheckpointError(f"{where}: the field {name!r} is {found}, but integrity_version {version} "
                                  f"requires it ({kind.__name__}); the file was edited or damaged after it was saved")
    missing = [field for field in ("model_class", "parameter_shapes", *base_fields) if field not in config["base"]]
    if missing:
        raise CheckpointError(f"{where}: the base fingerprint lacks {', '.join(missing)}, but integrity_version "
                              f"{version} requires them; the file was edited or damaged after it was saved")
    if record_digest(config) != config["record_checksum"]:
        raise CheckpointError(f"{where}: the record (recipe, options, groups, base fingerprint) does not match its "
                              "checksum: the file was edited or damaged after it was saved; save the adapter again "
                              "from the trained model")


def check_config(config: Any, where: str) -> None:
    """The config is a mapping with `REQUIRED_FIELDS` of the right types (and `checksums` a mapping if present)."""
    if not isinstance(config, dict):
        raise CheckpointError(f"{where}: expected a JSON object, found {type(config).__name__}")
    for name, kind in REQUIRED_FIELDS.items():
        if name not in config:
            raise CheckpointError(f"{where}: the field {name!r} is missing (fields: {', '.join(map(str, config)) or 'none'})")
        if not isinstance(config[name], kind):
            raise CheckpointError(f"{where}: the field {name!r} holds {type(config[name]).__name__}, expected {kind.__name__}")
    if "checksums" in config and not isinstance(config["checksums"], dict):
        raise CheckpointError(f"{where}: the field 'checksums' holds {type(config['checksums']).__name__}, expected dict")


def tensor_digest(tensor: torch.Tensor) -> str:
    """SHA-256 (first 128 bits, hex) of a tensor's dtype, shape and bytes (C order, on the CPU)."""
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    digest = hashlib.sha256(f"{str(flat.dtype).removeprefix('torch.')}{list(tensor.shape)}".encode())
    if flat.numel():
        digest.update(memoryview(flat.view(torch.uint8).numpy()))
    return digest.hexdigest()[:32]


def tensor_manifest(tensors: dict[str, torch.Tensor]) -> dict[str, str]:
    """name → digest of dtype, shape and bytes: stored in the config at save, checked at load."""
    return {name: tensor_digest(t) for name, t in sorted(tensors.items())}


def non_finite(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding NaN or ±inf."""
    return [name for name, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]


def _names(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def check_manifest(tensors: dict[str, torch.Tensor], manifest: dict[str, Any], where: str) -> None:
    """The tensors read are the tensors saved (names, dtype, shape, checksum), all finite."""
    missing, extra = sorted(set(manifest) - set(tensors)), sorted(set(tensors) - set(manifest))
    if missing or extra:
        raise CheckpointError(f"{where}: the weights file does not hold the tensors its config lists; "
                              f"missing: {_names(missing) or 'none'}; not listed: {_names(extra) or 'none'}")
    for name, tensor in tensors.items():
        if manifest[name] != tensor_digest(tensor):
            raise CheckpointError(f"{where}: tensor {name!r} ({str(tensor.dtype).removeprefix('torch.')} "
                                  f"{list(tensor.shape)}) does not match its checksum "
                                  "(the file was changed or damaged after it was saved)")
    bad = non_finite(tensors)
    if bad:
        raise CheckpointError(f"{where}: non-finite values (NaN or inf) in {_names(bad)}")


def check_layout(tensors: dict[str, torch.Tensor], layout: dict[str, tuple[tuple[int, ...], torch.dtype]],
                 where: str) -> None:
    """The tensors fit the modules the recipe makes on this model."""
    missing, extra = sorted(set(layout) - set(tensors)), sorted(set(tensors) - set(layout))
    if missing or extra:
        raise CheckpointError(f"{where}: tensors do not match the recipe's modules on this model; "
                              f"missing: {_names(missing) or 'none'}; unexpected: {_names(extra) or 'none'}")
    for name, (shape, dtype) in layout.items():
        source = tensors[name]
        if tuple(source.shape) != tuple(shape):
            raise CheckpointError(f"{where}: {name} has shape {tuple(source.shape)}, the model expects {tuple(shape)}")
        if dtype.is_floating_point != source.is_floating_point() or dtype.is_complex != source.is_complex():
            raise CheckpointError(f"{where}: {name} is {str(source.dtype).removeprefix('torch.')}, "
                                  f"the model holds {str(dtype).removeprefix('torch.')} there")


def recipe_differences(saved: dict[str, Any], applied: dict[str, Any], depths: dict[str, int]) -> list[str]:
    """'key: checkpoint X, model Y' for each recipe key that changes what the model computes.

    Name and description are labels and do not count; options are compared after parsing (a
    default spelled out equals the default left out), sites and trained groups as sets, layers
    as the blocks they select in this model.
    """
    try:
        ours, theirs = load_recipe(saved), load_recipe(applied)
    except RecipeError as error:
        return [f"the checkpoint's recipe is not valid ({error})"]
    if ours.method != theirs.method:
        return [f"method: checkpoint {ours.method!r}, model {theirs.method!r}"]
    differences = []
    options_class = get_method_class(ours.method).Options
    try:
        mine, yours = parse_options(options_class, ours.options), parse_options(options_class, theirs.options)
    except RecipeError as error:
        return [f"the checkpoint's recipe is not valid ({error})"]
    for name, value in vars(mine).items():
        if vars(yours)[name] != value:
            differences.append(f"options.{name}: checkpoint {value!r}, model {vars(yours)[name]!r}")
    for key in ("sites", "train"):
        if set(getattr(ours, key)) != set(getattr(theirs, key)):
            differences.append(f"{key}: checkpoint {list(getattr(ours, key))}, model {list(getattr(theirs, key))}")
    differences += _layer_differences(ours, theirs, depths)
    return differences


def _layer_differences(ours: Recipe, theirs: Recipe, depths: dict[str, int]) -> list[str]:
    if not ours.sites and not theirs.sites:
        return []
    found = []
    mine, yours = ours.layers, theirs.layers
    for stack, depth in depths.items():
        if stack not in mine or stack not in yours:
            continue
        try:
            a, b = select_layers(f"layers.{stack}", mine[stack], depth), select_layers(f"layers.{stack}", yours[stack], depth)
        except RecipeError as error:
            return [f"the checkpoint's recipe does not fit this model ({error})"]
        if a != b:
            found.append(f"layers.{stack}: checkpoint blocks {a}, model blocks {b}")
    return found


def has_values(model: nn.Module) -> bool:
    """False for a model whose tensors live on the meta device (nothing to save or load into)."""
    return not any(t.is_meta for t in model.parameters())
