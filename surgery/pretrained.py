"""A spliced model and transformers' save_pretrained / from_pretrained, and the Hugging Face Hub.

transformers' `from_pretrained` builds the model class from its config, so it cannot know that
blocks had modules spliced in: it reports their tensors as UNEXPECTED and drops them. So

* transformers' own ``model.save_pretrained(folder)`` writes the base, every adapter's tensors
  (under their live names) and, in ``config.json``, each adapter's name and recipe
  (`surgery.config_record`): enough to rebuild the model; no method of the model is replaced;
* `surgery.save_pretrained(model, folder)` does the same and writes each adapter's own files and a
  model card beside it (the first adapter's files there, every other one's in ``adapters/<name>/``);
* `surgery.from_pretrained(folder_or_repo)` brings either folder back whole: the base class from
  the folder, the recipes applied, the trained tensors loaded. Given an adapter folder (or repo)
  instead, it loads the base model the adapter records, then the adapter (like PEFT's
  ``AutoPeftModel.from_pretrained``);
* `surgery.push_to_hub(model, repo_id)` uploads the adapter folder (tensors, recipe, card) with
  `huggingface_hub`; `load_adapter` and `from_pretrained` accept the repo id.

>>> import surgery, tempfile, torch
>>> from transformers import T5Config, T5ForConditionalGeneration
>>> model = T5ForConditionalGeneration(T5Config(d_model=128, d_kv=16, d_ff=256, num_layers=2, num_heads=4, vocab_size=100))
>>> _ = surgery.apply(model, "compacter++")
>>> folder = tempfile.mkdtemp()
>>> model.save_pretrained(folder)
>>> again = surgery.from_pretrained(folder)
>>> ids = torch.tensor([[5, 6, 7]])
>>> bool((again.eval()(input_ids=ids, decoder_input_ids=ids).logits == model.eval()(input_ids=ids, decoder_input_ids=ids).logits).all())
True
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import transformers
from safetensors import SafetensorError
from torch import nn

from .adapters import list_adapters, set_active
from .checkpoint import read_adapter_config, resolve_checkpoint, write_adapter
from .checkpoint import load_adapter as _load_adapter
from .config_record import recorded_adapters
from .distributed import rank
from .errors import CheckpointError
from .naming import is_added
from .planner import apply

logger = logging.getLogger(__name__)


def save_pretrained(model: nn.Module, save_directory: str | Path, *args: Any, **kwargs: Any) -> Any:
    """``model.save_pretrained(save_directory, ...)``, then each adapter's files and a model card beside it.

    The folder loads whole with `surgery.from_pretrained`; its adapter files also load alone into a
    fresh base with `surgery.load_adapter` (the first adapter's in the folder, every other one's in
    ``adapters/<name>/``, as PEFT lays them out).
    """
    result = model.save_pretrained(save_directory, *args, **kwargs)
    if kwargs.get("is_main_process", True):
        names = list_adapters(model)
        first, others = names[0], names[1:]
        _drop_stale_adapter_folders(Path(save_directory), set(others))
        write_adapter(model, save_directory, kind="model", name=first)
        for name in others:  # every further adapter in a folder of its own, as PEFT does
            write_adapter(model, Path(save_directory) / ADAPTERS_FOLDER / name, kind="adapter", name=name)
    return result


def _drop_stale_adapter_folders(folder: Path, keep: set[str]) -> None:
    """Adapter folders an earlier save left in ``adapters/`` for adapters the model no longer has."""
    import shutil

    others = folder / ADAPTERS_FOLDER
    if others.is_dir():
        for sub in others.iterdir():
            if sub.is_dir() and sub.name not in keep and (sub / "t5_surgery_adapter.json").is_file():
                shutil.rmtree(sub)


# `save_pretrained` of a model with several adapters: the first one's files beside the model, each
# other one's in adapters/<name>/ (a complete adapter folder).
ADAPTERS_FOLDER = "adapters"


# Names of the tensors surgery adds (surgery.naming), as transformers' ignore patterns.
_ADDED_PATTERNS = {r"\.spliced\.", r"^surgery\.", r"(^|\.)surgery_"}


@contextmanager
def _spliced_keys_expected(cls: type):
    """While building the base, transformers would report the spliced tensors as UNEXPECTED (they are
    loaded next, by `load_adapter`): let the class ignore exactly those names, nothing else."""
    own = "_keys_to_ignore_on_load_unexpected" in cls.__dict__
    previous = cls.__dict__.get("_keys_to_ignore_on_load_unexpected")
    cls._keys_to_ignore_on_load_unexpected = set(getattr(cls, "_keys_to_ignore_on_load_unexpected", None) or ()) | _ADDED_PATTERNS
    try:
        yield
    finally:
        if own:
            cls._keys_to_ignore_on_load_unexpected = previous
        else:
            del cls._keys_to_ignore_on_load_unexpected


def _model_class(name: str, given: type | None) -> type:
    if given is not None:
        return given
    cls = getattr(transformers, name, None)
    if cls is None:
        raise CheckpointError(f"the checkpoint's model class {name!r} is not in transformers {transformers.__version__}; "
                              "pass model_class=")
    return cls


def _check_model_config(path: Path, record: dict[str, Any]) -> None:
    """The folder's config.json is JSON of the model type the adapter record names (before loading any weight)."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not a readable JSON model config ({error})") from None
    expected = record["base"].get("model_type")
    found = config.get("model_type") if isinstance(config, dict) else None
    if expected is not None and found != expected:
        raise CheckpointError(f"{path}: model_type {found!r}, but the adapter beside it was saved from a {expected!r} "
                              f"model ({record['base'].get('model_class')}); the folder mixes files of two models")


@contextmanager
def _named_on_failure(what: str) -> Iterator[None]:
    """transformers' and safetensors' errors for a damaged or missing model file, as one CheckpointError."""
    try:
        yield
    except (SafetensorError, OSError, ValueError, RuntimeError, KeyError) as error:
        raise CheckpointError(f"{what}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''} "
                              "(a damaged, truncated or missing model.safetensors / config.json?)") from None


def from_pretrained(name_or_path: str | Path, *, model_class: type | None = None, base_model: str | None = None,
                    revision: str | None = None, token: str | bool | None = None, allow_other_base: bool = False,
                    **kwargs: Any) -> nn.Module:
    """The spliced model in a folder or Hub repo: one written by `model.save_pretrained`, or an adapter.

    Args:
        name_or_path: a local folder or a Hub repo id.
        model_class: the transformers class to build (default: the one the checkpoint records).
        base_model: for an adapter folder, the base to load instead of the one it records
            (e.g. a local copy of it).
        revision, token: for the Hub.
        allow_other_base: load the adapter even where the base's weights differ from those it was
            trained on (see `surgery.load_adapter`); e.g. with `base_model=` a fine-tuned copy.
        **kwargs: passed to the class's `from_pretrained` (dtype, device_map, quantization_config, ...).
    """
    folder = resolve_checkpoint(name_or_path, revision, token)
    recorded = _recorded_in_config(folder)
    if recorded is not None and not (folder / "t5_surgery_adapter.json").is_file():
        return _from_config_record(folder, *recorded, model_class=model_class, **kwargs)
    record = read_adapter_config(folder)
    cls = _model_class(record["base"]["model_class"], model_class)
    if (folder / "config.json").is_file() and base_model is None:
        _check_model_config(folder / "config.json", record)
        weights = [p for p in sorted(folder.glob("*.safetensors")) if not p.name.startswith("t5_surgery")]
        with _spliced_keys_expected(cls), _named_on_failure(f"cannot load the model from {' and '.join(map(str, weights)) or folder}"):
            model = cls.from_pretrained(folder, **kwargs)
    else:
        origin = record.get("base_model") or {}
        name = base_model or origin.get("repo_id") or origin.get("name_or_path")
        if not name:
            raise CheckpointError(f"{folder} does not record its base model (it was trained from a model built in memory); "
                                  "pass base_model=NAME_OR_PATH, or load the base yourself and call surgery.load_adapter(model, folder)")
        if base_model is None and origin.get("revision"):
            kwargs.setdefault("revision", origin["revision"])
        with _named_on_failure(f"cannot load the base model {name!r} that {folder} records"):
            model = cls.from_pretrained(name, token=token, **kwargs)
    _load_adapter(model, folder, allow_other_base=allow_other_base, name=record.get("adapter_name"))
    others = folder / ADAPTERS_FOLDER
    if others.is_dir() and (folder / "config.json").is_file():
        for sub in sorted(p for p in others.iterdir() if p.is_dir()):
            extra = read_adapter_config(sub)
            _load_adapter(model, sub, allow_other_base=allow_other_base, name=extra.get("adapter_name", sub.name))
        active = (recorded[1].get("active") if recorded is not None else None) or [record.get("adapter_name") or "default"]
        set_active(model, active)
    return model


def _recorded_in_config(folder: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(config.json's contents, its adapters record) for a folder of ``save_pretrained`` of a spliced model;
    None for any other folder."""
    path = folder / "config.json"
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not a readable JSON model config ({error})") from None
    record = recorded_adapters(config, str(path)) if isinstance(config, dict) else None
    return None if record is None else (config, record)


def _added_tensors(folder: Path) -> dict[str, Any]:
    """Every tensor surgery added, from the folder's weight files (one file or shards)."""
    from safetensors import safe_open

    tensors = {}
    for path in sorted(folder.glob("*.safetensors")):
        with _named_on_failure(f"cannot read {path}"), safe_open(str(path), framework="pt") as weights:
            for key in weights.keys():
                if is_added(key):
                    tensors[key] = weights.get_tensor(key)
    return tensors


def _from_config_record(folder: Path, config: dict[str, Any], record: dict[str, Any], *, model_class: type | None,
                        **kwargs: Any) -> nn.Module:
    """The model transformers' ``save_pretrained`` wrote: the base, each recorded recipe applied, its tensors loaded."""
    architectures = config.get("architectures") or [None]
    cls = _model_class(architectures[0], model_class)
    with _spliced_keys_expected(cls), _named_on_failure(f"cannot load the model from {folder}"):
        model = cls.from_pretrained(folder, **kwargs)
    for entry in record["adapters"]:
        apply(model, entry["recipe"], name=entry["name"])
    tensors = _added_tensors(folder)
    expected = {name: tensor for name, tensor in model.state_dict().items() if is_added(name)}
    missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    wrong = [n for n in expected if n in tensors and tuple(tensors[n].shape) != tuple(expected[n].shape)]
    if missing or unexpected or wrong:
        raise CheckpointError(f"{folder}: its weights do not hold what the adapters recorded in config.json add "
                              f"(missing: {missing[:3]}, unexpected: {unexpected[:3]}, other shape: {wrong[:3]}); "
                              "the folder mixes files of two saves")
    model.load_state_dict(tensors, strict=False)
    set_active(model, record.get("active") or [record["adapters"][0]["name"]])
    return model


def push_to_hub(model: nn.Module, repo_id: str, *, private: bool | None = None, token: str | bool | None = None,
                revision: str | None = None, commit_message: str = "Upload t5-surgery adapter",
                base_revision: str | None = None) -> Any:
    """Upload the model's adapter (tensors, recipe, model card) to the Hub repo `repo_id`; returns the commit info.

    `model.push_to_hub` (transformers') uploads the whole spliced model instead; its model card
    is transformers' own.
    """
    import huggingface_hub

    api = huggingface_hub.HfApi(token=token)
    with tempfile.TemporaryDirectory() as folder:
        write_adapter(model, folder, kind="adapter", base_revision=base_revision)
        if rank() != 0:  # under FSDP every rank gathers; rank 0 uploads
            return None
        readme = Path(folder) / "README.md"
        readme.write_text(readme.read_text().replace(folder, repo_id))
        repo = api.create_repo(repo_id, private=private, exist_ok=True)
        return api.upload_folder(repo_id=getattr(repo, "repo_id", repo_id), folder_path=folder, revision=revision,
                                 commit_message=commit_message)
