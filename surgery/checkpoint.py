"""Adapter-only checkpoints: the trained tensors, the recipe, checksums, and the base fingerprint.

A checkpoint folder holds

* ``t5_surgery_adapter.safetensors`` — every trained tensor once (a tensor several modules share,
  like Compacter's rule, is owned by one module and stored under that one name), and every
  tensor surgery added (a frozen rule too), so loading rebuilds the same function;
* ``t5_surgery_adapter.json`` — the recipe, the trained groups, their counts, a SHA-256 of every
  tensor (`surgery.verify`), the base's architecture and a sample of its weights
  (`surgery.fingerprint`), and the base model's name and revision where known;
* ``README.md`` — a model card (`surgery.model_card`): recipe, counts, how to load it.

The names are our own, so neither we nor PEFT mistake one format for the other: a PEFT folder
(``adapter_config.json`` with a ``peft_type``) given to `load_adapter` gets a message saying what
it is and what reads it. Folders of the first format (``adapter_model.safetensors`` +
``adapter_config.json`` with ``"format": "t5-surgery-adapter/1"``) still load, as do format-2
folders written before checksums (both with a warning that nothing can be verified).

Saving writes a new folder next to the target and moves it into place, so a folder is never
half-written and files of an earlier checkpoint do not linger in it (``save_pretrained``'s folder,
which holds the model too, gets each file replaced whole instead). Loading checks everything
first — the config, the checksums, finiteness, the base, that the tensors fit the recipe's
modules — and only then changes the model, all or nothing (`surgery.transaction`). Every
problem is a `CheckpointError` naming the file. Saving and loading see through DDP, FSDP1 and
FSDP2 wrappers (`surgery.distributed`); under FSDP every rank calls them, and rank 0 writes.
"""

from __future__ import annotations

import json
import shutil
import uuid
import warnings
from math import prod
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .distributed import barrier, gather_full, is_sharded, load_full, rank, sharded_state, unwrap
from .errors import CheckpointError, SurgeryError
from .fingerprint import weights_fingerprint
from .hub import resolve_folder
from .model_card import CARD_FILE, render_model_card
from .naming import DEFAULT_ADAPTER, STATE, canonical_name, check_adapter_name, is_added
from .planner import apply, plan
from .provenance import CONFIG_FIELDS, base_fingerprint, base_origin, check_base, parameter_shapes
from .sites import SITE_NAMES
from .state import resolve_adapter
from .quantization import logical_shape
from .trainable_report import Report
from .checkpoint_tensors import checkpoint_names, clean_name
from .transaction import all_or_nothing
from .verify import (INTEGRITY_VERSION, check_config, check_integrity, check_layout, check_manifest, has_values, non_finite,
                     recipe_differences, record_digest, tensor_manifest)

FORMAT = "t5-surgery-adapter/2"
WEIGHTS_FILE = "t5_surgery_adapter.safetensors"
CONFIG_FILE = "t5_surgery_adapter.json"
# The first format used PEFT's file names; it is still read.
LEGACY_FORMAT = "t5-surgery-adapter/1"
LEGACY_WEIGHTS_FILE = "adapter_model.safetensors"
LEGACY_CONFIG_FILE = "adapter_config.json"
_clean = clean_name


def _surgery_state(inner: nn.Module) -> nn.Module:
    state = getattr(inner, STATE, None)
    if state is None:
        raise CheckpointError(f"no surgery was applied to this model ({type(inner).__name__}), so it has no adapter to save")
    return state


def _check_target(directory: Path, kind: str) -> None:
    """The folder can take a checkpoint: absent, empty, an earlier checkpoint, or (kind "model") a model folder."""
    for parent in directory.parents:
        if parent.exists() and not parent.is_dir():
            raise CheckpointError(f"cannot save to {directory}: {parent} is a file, not a folder")
    if directory.exists():
        if not directory.is_dir():
            raise CheckpointError(f"cannot save to {directory}: it is a file, not a folder")
        if kind == "adapter" and any(directory.iterdir()) and not (directory / CONFIG_FILE).is_file() \
                and not (directory / LEGACY_CONFIG_FILE).is_file():
            raise CheckpointError(f"cannot save to {directory}: it holds other files and no {CONFIG_FILE} "
                                  "(not an adapter checkpoint); choose an empty or new folder")


def _write_files(folder: Path, tensors: dict[str, torch.Tensor], record: dict[str, Any], location: str) -> None:
    save_file(tensors, folder / WEIGHTS_FILE, metadata={"format": FORMAT})
    (folder / CONFIG_FILE).write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    (folder / CARD_FILE).write_text(render_model_card(json.loads(json.dumps(record, default=str)), location), encoding="utf-8")


def _move_into_place(staging: Path, directory: Path) -> None:
    """Swap `staging` in for `directory` (renames within one folder: each one atomic)."""
    if not directory.exists():
        staging.rename(directory)
        return
    replaced = directory.parent / f".{directory.name}.replaced-{uuid.uuid4().hex[:8]}"
    directory.rename(replaced)
    try:
        staging.rename(directory)
    except BaseException:  # a disk error or an interrupt: put the earlier checkpoint back
        replaced.rename(directory)
        raise
    shutil.rmtree(replaced, ignore_errors=True)


def _save(directory: Path, kind: str, tensors: dict[str, torch.Tensor], record: dict[str, Any]) -> None:
    """An adapter folder: staged beside it, then swapped in. A model folder (save_pretrained): each file replaced whole."""
    staging = directory.parent / f".{directory.name}.saving-{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir(parents=True)
        _write_files(staging, tensors, record, str(directory))
        if kind == "model":
            for entry in staging.iterdir():
                entry.replace(directory / entry.name)
        else:
            _move_into_place(staging, directory)
    except OSError as error:
        raise CheckpointError(f"cannot save to {directory}: {error.strerror or error}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_adapter(model: nn.Module, directory: str | Path, kind: str = "adapter", base_revision: str | None = None,
                  name: str | None = None) -> Path:
    """`save_adapter` with the folder's kind for the model card: "adapter", or "model" (a save_pretrained folder)."""
    directory = Path(directory)
    inner = unwrap(model)
    state = _surgery_state(inner)
    try:
        adapter = resolve_adapter(inner, name, action="save")
    except SurgeryError as error:
        raise CheckpointError(str(error)) from None
    record_of = state.record(adapter)
    sharded = is_sharded(model)
    if not sharded and not has_values(inner):
        raise CheckpointError("the model's tensors are on the meta device: there are no values to save")
    names = checkpoint_names(inner, state, adapter=adapter)
    if not names:
        raise CheckpointError(f"the model holds no trained or added tensor to save (recipe {record_of.recipe.get('name')!r}); "
                              "an empty adapter would load as a silently different model")
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
    # A checkpoint names its tensors as the default adapter would, so it loads under any name.
    tensors = {canonical_name(n, adapter): t for n, t in tensors.items()}
    groups = {group: [canonical_name(n, adapter) for n in members] for group, members in record_of.groups.items()}
    bad = non_finite(tensors)
    if bad:
        raise CheckpointError(f"refusing to save non-finite values (NaN or inf) in {', '.join(bad[:5])}")
    _check_target(directory, kind)
    record = {
        "format": FORMAT, "library": "t5-surgery", "kind": kind, "recipe": record_of.recipe, "groups": groups,
        "counts": {group: sum(tensors[n].numel() for n in members if n in tensors) for group, members in groups.items()},
        "tensors": len(tensors), "checksums": tensor_manifest(tensors),
        "base_parameters": sum(prod(shape) for name, shape in shapes.items() if not is_added(name)),
        "base": base_fingerprint(inner, shapes), "base_model": base_origin(inner, base_revision),
    }
    if adapter != DEFAULT_ADAPTER:
        record["adapter_name"] = adapter
    if not sharded:
        record["base_weights"] = weights_fingerprint(inner, trained=set(tensors))
    else:  # sampling a sharded base would gather it: sharded saves record the architecture only, and say so
        record["base_weights"] = {"not_sampled": "saved from a sharded model"}
    record["integrity_version"] = INTEGRITY_VERSION
    record["record_checksum"] = record_digest(json.loads(json.dumps(record, default=str)))
    _save(directory, kind, tensors, record)
    if sharded:
        barrier()
    return directory


def save_adapter(model: nn.Module, directory: str | Path, base_revision: str | None = None, *,
                 name: str | None = None) -> Path:
    """Write the trained tensors, the recipe, their checksums, the base fingerprint and a model card.

    `name`: which adapter (default: the one in effect, or the only one). The files are the same
    whatever its name, so the checkpoint loads under any name, the default's included.
    `model` may be wrapped (DDP, FSDP1, FSDP2); under FSDP call this on every rank. `base_revision`:
    the base model's Hub revision, recorded when transformers does not know it. An earlier
    checkpoint in `directory` is replaced as a whole; a folder holding anything else is refused.

    >>> import surgery, tempfile, torch
    >>> from transformers import T5Config, T5ForConditionalGeneration
    >>> config = T5Config(d_model=128, d_kv=16, d_ff=256, num_layers=2, num_heads=4, vocab_size=100)
    >>> _ = torch.manual_seed(0); model = T5ForConditionalGeneration(config); _ = surgery.apply(model, "compacter")
    >>> folder = surgery.save_adapter(model, tempfile.mkdtemp())
    >>> sorted(p.name for p in folder.iterdir())
    ['README.md', 't5_surgery_adapter.json', 't5_surgery_adapter.safetensors']
    >>> _ = torch.manual_seed(0); fresh = T5ForConditionalGeneration(config)   # the same base weights
    >>> surgery.load_adapter(fresh, folder).trainable == surgery.report(model).trainable
    True
    >>> surgery.load_adapter(T5ForConditionalGeneration(config), folder)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    surgery.errors.CheckpointError: ... was saved from a base with other weights: ... pass load_adapter(..., allow_other_base=True) ...
    """
    return write_adapter(model, directory, "adapter", base_revision, name=name)


def _peft_message(path: Path, config: dict[str, Any]) -> str:
    return (f"{path.parent} is a PEFT adapter (peft_type {config.get('peft_type')!r}, base model "
            f"{config.get('base_model_name_or_path')!r}), not a t5-surgery adapter: load it with PEFT "
            "(peft.PeftModel.from_pretrained(model, folder)). t5-surgery adapters hold "
            f"{CONFIG_FILE} and {WEIGHTS_FILE}")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as error:
        raise CheckpointError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path} is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})") from None
    except (OSError, RecursionError) as error:
        raise CheckpointError(f"{path} cannot be read ({error})") from None


def _stale_saves(directory: Path) -> list[Path]:
    """The staging folders an interrupted `save_adapter` into `directory` left next to it."""
    if not directory.parent.is_dir():
        return []
    return [p for p in directory.parent.glob(f".{directory.name}.*")
            if p.is_dir() and (".saving-" in p.name or ".replaced-" in p.name)]


def refuse_interrupted_save(directory: Path) -> None:
    """Where `directory` is gone because a save over it was interrupted between its two renames, say where
    the complete earlier checkpoint survives and how to put it back."""
    if directory.exists():
        return
    survivors = sorted((p for p in _stale_saves(directory) if ".replaced-" in p.name and (p / CONFIG_FILE).is_file()),
                       key=lambda p: p.stat().st_mtime, reverse=True)
    if survivors:
        raise CheckpointError(f"{directory} does not exist: a save over it was interrupted, and the complete earlier "
                              f"checkpoint survives as {survivors[0]}; restore it with: mv {survivors[0]} {directory}")


def resolve_checkpoint(directory: str | Path, revision: str | None = None, token: str | bool | None = None) -> Path:
    """A local folder for a checkpoint folder or Hub repo id (`surgery.hub.resolve_folder`), after checking
    that it is not a folder an interrupted save left under another name."""
    if not isinstance(directory, (str, Path)):
        raise CheckpointError(f"the checkpoint {directory!r} is not a folder path or a Hub repo id (a str or Path)")
    refuse_interrupted_save(Path(directory))
    return resolve_folder(directory, revision, token)


def read_adapter_config(directory: str | Path) -> dict[str, Any]:
    """The JSON record of an adapter folder (either format), checked; or a CheckpointError saying what the folder is."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"{directory} is a file; an adapter checkpoint is a folder with {CONFIG_FILE} and {WEIGHTS_FILE}")
    path = directory / CONFIG_FILE
    if path.is_file():
        config = _read_json(path)
        check_config(config, str(path))
        if config["format"] != FORMAT:
            raise CheckpointError(f"{path}: format {config['format']!r} is not {FORMAT!r}")
        check_integrity(config, str(path), CONFIG_FIELDS)
        return config
    legacy = directory / LEGACY_CONFIG_FILE
    if legacy.is_file():
        config = _read_json(legacy)
        if isinstance(config, dict) and "peft_type" in config:
            raise CheckpointError(_peft_message(legacy, config))
        if not isinstance(config, dict) or config.get("format") != LEGACY_FORMAT:
            raise CheckpointError(f"{legacy} is neither a t5-surgery adapter (no \"format\": {FORMAT!r}) nor a PEFT one (no peft_type)")
        check_config(config, str(legacy))
        return config
    hint = ("; it holds a transformers model (config.json): load it with from_pretrained"
            if (directory / "config.json").is_file() else "")
    refuse_interrupted_save(directory)
    raise CheckpointError(f"{path} does not exist: not an adapter checkpoint folder (expected {CONFIG_FILE} "
                          f"and {WEIGHTS_FILE}){hint}")


def _weights_file(directory: Path, config: dict[str, Any]) -> Path:
    return directory / (LEGACY_WEIGHTS_FILE if config.get("format") == LEGACY_FORMAT else WEIGHTS_FILE)


def read_adapter_tensors(directory: Path, config: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of the checkpoint's weights file, on the CPU, checked against the config's checksums."""
    path = _weights_file(directory, config)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist: the checkpoint has a config but no weights")
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path} is not a readable safetensors file ({error})") from None
    if "checksums" in config:
        check_manifest(tensors, config["checksums"], str(directory))
    else:
        warnings.warn(f"{directory} ({config['format']}, written before checksums) cannot be verified; "
                      "only names, shapes and finiteness are checked", stacklevel=3)
        bad = non_finite(tensors)
        if bad:
            raise CheckpointError(f"{directory}: non-finite values (NaN or inf) in {', '.join(bad[:5])}")
    return tensors


def load_adapter(model: nn.Module, directory: str | Path, revision: str | None = None, *,
                 allow_other_base: bool = False, name: str | None = None) -> Report:
    """Apply the checkpoint's recipe to `model` as adapter `name` (unless already applied) and load its tensors.

    `name`: the adapter to load into — a new one gets the checkpoint's recipe applied; an existing
    one must have the same recipe. Default: the adapter in effect (or the only one); ``"default"``
    for a model without surgery. `directory` is a folder or a Hub repo id (downloaded with
    `huggingface_hub`, at `revision`). Everything is checked before the model changes: a damaged
    or edited checkpoint, a base of another architecture, or (unless `allow_other_base`) a base with
    other weights raises a `CheckpointError` and leaves the model exactly as it was. A wrapped model
    (DDP, FSDP) must have had the recipe applied before it was wrapped.
    """
    from .planner import report

    directory = resolve_checkpoint(directory, revision)
    config = read_adapter_config(directory)
    where = _weights_file(directory, config).with_name(CONFIG_FILE if config["format"] == FORMAT else LEGACY_CONFIG_FILE)
    inner, sharded = unwrap(model), is_sharded(model)
    if not sharded and not has_values(inner):
        raise CheckpointError(f"cannot load {directory} into a model on the meta device: it has no base weights; "
                              "load the base model's weights first")
    check_base(config, model, directory, trained=None)  # the architecture, before reading any tensor
    state = getattr(inner, STATE, None)
    try:
        adapter = (DEFAULT_ADAPTER if state is None else resolve_adapter(inner, None, action="load into")) \
            if name is None else check_adapter_name(name, SITE_NAMES)
    except SurgeryError as error:
        raise CheckpointError(f"cannot load {directory}: {error}") from None
    tensors = read_adapter_tensors(directory, config)
    legacy = config["format"] == LEGACY_FORMAT
    the_plan = None
    if state is None or adapter not in state.records:
        if inner is not model or sharded:
            raise CheckpointError(f"the model is wrapped ({type(model).__name__}) and has no adapter {adapter!r} yet: load "
                                  "the adapter (or apply its recipe) before wrapping it for DDP / FSDP")
        try:
            the_plan = plan(model, config["recipe"], name=adapter)
        except SurgeryError as error:
            raise CheckpointError(f"{where}: its recipe cannot be applied to this model: {error}") from None
        layout = {n: v for n, v in the_plan.adapter_layout.items() if not (legacy and n in the_plan.frozen_added)}
    else:
        applied = state.record(adapter).recipe
        depths = {stack: len(blocks) for stack, blocks in _stack_blocks(inner).items()}
        differences = recipe_differences(config["recipe"], applied, depths)
        if differences:
            raise CheckpointError(f"{directory} holds recipe {config['recipe'].get('name')!r}, but the model was given recipe "
                                  f"{applied.get('name')!r}{'' if adapter == DEFAULT_ADAPTER else f' as adapter {adapter!r}'}; "
                                  "they differ in " + "; ".join(differences))
        shapes = {**parameter_shapes(model), **{_clean(n): tuple(b.shape) for n, b in inner.named_buffers()}}
        dtypes = {**{_clean(n): p.dtype for n, p in inner.named_parameters()}, **{_clean(n): b.dtype for n, b in inner.named_buffers()}}
        layout = {canonical_name(live, adapter): (shapes[live], dtypes[live])
                  for live in checkpoint_names(inner, state, include_frozen_added=not legacy, adapter=adapter)}
    check_layout(tensors, layout, str(directory))
    if not allow_other_base and not sharded:
        check_base(config, model, directory, trained=set(layout))
    if sharded:
        live_of = _live_names(inner, adapter, legacy)
        load_full(model, {live_of[name]: tensors[name] for name in layout})
        record = state.record(adapter)
        counts = {group: sum(tensors[canonical_name(n, adapter)].numel() for n in members) for group, members in record.groups.items()}
        base = sum(prod(shape) for name, shape in parameter_shapes(model).items() if not is_added(name))
        added = sum(tensors[n].numel() for n in layout if is_added(n))
        return Report(record.recipe.get("name", "custom"), counts, base, added)
    with all_or_nothing(inner) as snapshot:
        if the_plan is not None:
            apply(model, the_plan)
        targets = {**dict(inner.named_parameters()), **dict(inner.named_buffers())}
        live_of = _live_names(inner, adapter, legacy)
        # Convert first (this allocates and may fail), then write; an interrupted write is undone too.
        converted = {name: tensors[name].to(device=targets[live_of[name]].device,
                                            dtype=targets[live_of[name]].dtype) for name in layout}
        with snapshot.recording_writes(), torch.no_grad():
            for name in layout:
                targets[live_of[name]].copy_(converted[name])
    return report(inner, adapter)


def _live_names(inner: nn.Module, adapter: str, legacy: bool) -> dict[str, str]:
    """checkpoint name → the model's name of that tensor, for what a checkpoint of `adapter` holds (an
    adapter's copy of a base tensor, or — full fine-tuning, which trains the base itself — the base tensor)."""
    state = getattr(inner, STATE)
    return {canonical_name(live, adapter): live
            for live in checkpoint_names(inner, state, include_frozen_added=not legacy, adapter=adapter)}


def _stack_blocks(model: nn.Module) -> dict[str, list[nn.Module]]:
    from .family_registry import detect_family

    return detect_family(model).blocks(model)
