"""The model and tokenizer a run trains: a pretrained checkpoint, or a T5 initialised at random.

Without ``--model`` a run trains the pretrained T5 its tasks are written for, shipped with this
project: world 2's ``runners/embedded/world2/model/`` for ``world2-*`` (the invocation passes it as
the model folder: ``runners.finetune.invocation.shipped_model``), otherwise world 1's
``runners/embedded/model/`` (pretrained here by ``python -m runners.pretrain``) with its tokenizer:
nothing to download, fast on a CPU. With ``--model NAME_OR_PATH`` the tokenizer and weights come from the Hugging Face Hub
or a local folder, as ``transformers`` loads them. ``--random-init`` keeps the architecture and
draws the weights at random (the baseline that shows what pretraining is worth);
``--init-config KEY=VALUE ...`` sizes a small random-init T5 with the embedded tokenizer (world 2's for
world 2's tasks: ``tokenizer_folder``).

>>> from runners.tasks.data import embedded_tokenizer
>>> tokenizer = embedded_tokenizer()
>>> model = build_model(None, tokenizer, init_overrides={"d_model": 32, "num_layers": 1})
>>> model.config.vocab_size == len(tokenizer), model.config.d_model, model.config.num_decoder_layers
(True, 32, 1)
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any

import torch
from transformers import T5Config, T5ForConditionalGeneration

from runners.hub import prepare_hub
from surgery.errors import SurgeryError

from .errors import TrainingSetupError
from .model_kind import ModelKind, family_and_kind

# The base of --init-config (small random-init models, e.g. for tests): 0.69M parameters; d_model
# 128 keeps Compacter applicable (n = 4 divides d_model / 32 = 4).
INIT_CONFIG_BASE: dict[str, Any] = {"d_model": 128, "d_kv": 32, "d_ff": 256, "num_layers": 2, "num_heads": 4,
                           "dropout_rate": 0.1, "feed_forward_proj": "relu"}


class ModelLoadError(ValueError):
    """A --model or --init-config that cannot be loaded; the message says what was tried."""


# The T5Config fields --init-config may set: (type, lowest, highest) for numbers, choices for text.
# The tokenizer sets the special ids; other fields do not size the random-init model.
INIT_FIELDS: dict[str, tuple[type, float | None, float | None]] = {
    "d_model": (int, 1, 2**20), "d_kv": (int, 1, 2**20), "d_ff": (int, 1, 2**24), "num_heads": (int, 1, 2**12),
    "num_layers": (int, 1, 2**12), "num_decoder_layers": (int, 1, 2**12), "vocab_size": (int, 1, 2**24),
    "relative_attention_num_buckets": (int, 1, 2**16), "relative_attention_max_distance": (int, 1, 2**24),
    "dropout_rate": (float, 0.0, 1.0), "classifier_dropout": (float, 0.0, 1.0),
    "layer_norm_epsilon": (float, 0.0, 1.0), "initializer_factor": (float, 0.0, 1e6),
    "feed_forward_proj": (str, None, None), "tie_word_embeddings": (bool, None, None),
}
OPEN_ABOVE = {"dropout_rate", "classifier_dropout"}     # < 1: a dropout of 1 zeroes everything
OPEN_BELOW = {"layer_norm_epsilon", "initializer_factor"}  # > 0


def _feed_forward_proj_error(value: str) -> str | None:
    from transformers.activations import ACT2FN

    parts = value.split("-")
    if len(parts) > 2 or (len(parts) == 2 and parts[0] != "gated") or parts[-1] not in ACT2FN:
        return "an activation (relu, gelu, ...) or gated-<activation> (e.g. gated-gelu)"
    return None


def _parse_value(key: str, text: str) -> Any:
    kind, low, high = INIT_FIELDS[key]
    where = f"--init-config {key}={text}"
    if kind is bool:
        if text.lower() not in ("true", "false"):
            raise ModelLoadError(f"{where}: give true or false")
        return text.lower() == "true"
    if kind is str:
        problem = _feed_forward_proj_error(text) if key == "feed_forward_proj" else None
        if problem:
            raise ModelLoadError(f"{where}: not valid; give {problem}")
        return text
    try:
        value = int(text) if kind is int else float(text)
    except ValueError:
        raise ModelLoadError(f"{where}: give {'a whole number' if kind is int else 'a number'}") from None
    too_low = value < low or (key in OPEN_BELOW and value <= low)
    too_high = value > high or (key in OPEN_ABOVE and value >= high)
    if not math.isfinite(value) or too_low or too_high:
        left, right = ("(" if key in OPEN_BELOW else "["), (")" if key in OPEN_ABOVE else "]")
        raise ModelLoadError(f"{where}: give a value in {left}{low:g}, {high:g}{right}")
    return value


def parse_init_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["d_model=64", "dropout_rate=0.1", "feed_forward_proj=gated-gelu"]`` → typed, checked T5Config overrides.

    >>> parse_init_overrides(["d_model=64", "dropout_rate=0.1", "feed_forward_proj=gated-gelu"])
    {'d_model': 64, 'dropout_rate': 0.1, 'feed_forward_proj': 'gated-gelu'}
    >>> parse_init_overrides(["num_heads=0"])
    Traceback (most recent call last):
    ...
    runners.finetune.model.ModelLoadError: --init-config num_heads=0: give a value in [1, 4096]
    """
    overrides: dict[str, Any] = {}
    for item in items or []:
        key, separator, text = item.partition("=")
        if not separator or not key:
            raise ModelLoadError(f"--init-config {item!r}: expected KEY=VALUE, e.g. d_model=128")
        if key not in INIT_FIELDS:
            raise ModelLoadError(f"--init-config {key!r} is not a field of the random-init model; valid: "
                                 + ", ".join(INIT_FIELDS))
        if key in overrides:
            raise ModelLoadError(f"--init-config {key} is given twice")
        overrides[key] = _parse_value(key, text)
    return overrides


def tiny_t5_config(tokenizer, overrides: dict[str, Any] | None = None) -> T5Config:
    """A small T5 config sized to `tokenizer`'s vocabulary (INIT_CONFIG_BASE updated by `overrides`)."""
    settings = {"vocab_size": len(tokenizer), **INIT_CONFIG_BASE, **(overrides or {})}
    if settings["vocab_size"] < len(tokenizer):
        raise ModelLoadError(f"--init-config vocab_size={settings['vocab_size']}: the tokenizer has {len(tokenizer)} "
                             f"tokens; give at least {len(tokenizer)}")
    settings.setdefault("num_decoder_layers", settings["num_layers"])
    return T5Config(pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                    decoder_start_token_id=tokenizer.pad_token_id, **settings)


def embedded_model_dir() -> str:
    """The shipped pretrained embedded T5 (a save_pretrained folder)."""
    from runners.embedded import MODEL_DIR

    if not (MODEL_DIR / "config.json").is_file():
        raise ModelLoadError(f"{MODEL_DIR} holds no model; remake it with python -m runners.pretrain --output-dir "
                             f"runs/pretrain-embedded, then copy runs/pretrain-embedded/model to {MODEL_DIR}")
    return str(MODEL_DIR)


# Weight files save_pretrained writes, and the index of a sharded save.
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
# A tokenizer is refused when more than this share of the training words map to its unknown token.
UNKNOWN_WORDS_LIMIT = 0.5
SAMPLE_TEXTS = 200  # training texts (sources and targets) the share is measured on ...
SAMPLE_WORDS = 5000  # ... and at most this many of their words (a corpus's documents can be long)


def is_local_path(name: str) -> bool:
    """Whether `name` can only be a local path, not a Hub id ('name' or 'namespace/name').

    >>> [is_local_path(n) for n in ("google-t5/t5-small", "/tmp/model", "./model", "runs/a/model")]
    [False, True, True, True]
    """
    return (os.path.isabs(name) or name.startswith((".", "~")) or name.count("/") > 1
            or (os.sep != "/" and os.sep in name) or Path(name).exists())


def _local_folder(name: str, option: str) -> Path | None:
    """`name` as an existing local folder, None for a Hub id; ModelLoadError for a path that is not a folder."""
    if not is_local_path(name):
        return None
    folder = Path(name).expanduser()
    if not folder.exists():
        raise ModelLoadError(f"{option} {name}: the path does not exist; give a folder saved with save_pretrained "
                             "or a Hub name")
    if not folder.is_dir():
        raise ModelLoadError(f"{option} {name}: is a file; give a folder saved with save_pretrained")
    return folder


def safetensors_problem(path: Path) -> str | None:
    """Why `path` is not a whole safetensors file (truncated, damaged), or None. Reads the header only.

    A safetensors file is an 8-byte little-endian header length, a JSON header giving each
    tensor's byte range, then the data: the file ends exactly where the last range ends.
    """
    size = path.stat().st_size
    try:
        with path.open("rb") as file:
            (length,) = struct.unpack("<Q", file.read(8))
            if length > size - 8:
                return f"its header says {length:,} bytes but the file has {size:,}"
            header = json.loads(file.read(length))
        ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    except (struct.error, ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
        return f"its header is not readable ({type(error).__name__})"
    expected = 8 + length + max(ends, default=0)
    if size != expected:
        return f"it has {size:,} bytes where its header describes {expected:,} (truncated or damaged)"
    return None


def check_model_folder(name: str | None, *, weights: bool = True, option: str = "--model",
                       any_family: bool = False) -> None:
    """A local `name` is a loadable save_pretrained folder of a model the caller trains; else ModelLoadError.

    Checks, without loading any weights: the folder exists, its config.json is readable and
    names a sequence-to-sequence model type (with `any_family`: the type of any declared family,
    `runners.finetune.model_kind`), and (with `weights`) its weight files are present and, for
    safetensors, whole. Hub names and None (the embedded model) are left to the loader.
    """
    folder = None if name is None else _local_folder(name, option)
    if folder is None:
        return
    config_path = folder / "config.json"
    found = ", ".join(sorted(p.name for p in folder.iterdir())[:5]) or "nothing"
    if not config_path.is_file():
        raise ModelLoadError(f"{option} {name}: no config.json (found: {found}); give a folder saved with save_pretrained")
    try:
        model_type = json.loads(config_path.read_text(encoding="utf-8")).get("model_type")
    except (ValueError, UnicodeDecodeError, AttributeError) as error:
        raise ModelLoadError(f"{option} {name}: config.json is not readable JSON ({error})") from None
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES as SEQ2SEQ

    if any_family:
        family_and_kind_of(load_config(name, option), f"{option} {name}")
    elif model_type not in SEQ2SEQ:
        raise ModelLoadError(f"{option} {name}: config.json has model_type {model_type!r}, not a sequence-to-sequence "
                             "model; give a T5 (t5, mt5, umt5, ...) folder")
    if not weights:
        return
    present = [folder / file for file in WEIGHT_FILES if (folder / file).is_file()]
    if not present:
        raise ModelLoadError(f"{option} {name}: no model weights ({WEIGHT_FILES[0]}; found: {found}); give a folder "
                             "saved with save_pretrained, or add --random-init to draw the weights")
    shards = [present[0]]
    if present[0].name.endswith(".index.json"):
        try:
            shards = [folder / shard for shard in sorted(set(json.loads(present[0].read_text())["weight_map"].values()))]
        except (ValueError, KeyError, AttributeError, UnicodeDecodeError):
            raise ModelLoadError(f"{option} {name}: {present[0].name} is not a readable weight index") from None
    for shard in shards:
        if not shard.is_file():
            raise ModelLoadError(f"{option} {name}: {shard.name}, listed in {present[0].name}, is missing")
        problem = safetensors_problem(shard) if shard.suffix == ".safetensors" else None
        if problem:
            raise ModelLoadError(f"{option} {name}: {shard.name} is damaged: {problem}; save the model again")


def unknown_word_share(tokenizer, texts: list[str]) -> float | None:
    """The share of the words of `texts` whose tokens include the unknown token (None: no unknown token or no words).

    >>> from runners.tasks.data import embedded_tokenizer
    >>> unknown_word_share(embedded_tokenizer(), ["the sofa looked awful .", "水 sofa"])  # 1 word of 7: 水
    0.14285714285714285
    """
    unknown = getattr(tokenizer, "unk_token_id", None)
    words = [word for text in texts for word in text.split()][:SAMPLE_WORDS]
    if unknown is None or not words:
        return None
    encoded = tokenizer(words, add_special_tokens=False)["input_ids"]
    return sum(unknown in ids for ids in encoded) / len(words)


def check_tokenizer_covers(tokenizer, texts: list[str], origin: str) -> None:
    """Refuse a tokenizer that maps most words of the training texts to its unknown token (ModelLoadError).

    `origin` names where the tokenizer came from (``--model runs/x``); the share is measured on the
    first ``SAMPLE_TEXTS`` texts. Such a tokenizer (e.g. one transformers builds from a folder that
    lacks tokenizer.json) would train on <unk> and exit 0 having learnt nothing.
    """
    sample = texts[:SAMPLE_TEXTS]
    share = unknown_word_share(tokenizer, sample)
    if share is not None and share > UNKNOWN_WORDS_LIMIT:
        raise ModelLoadError(
            f"{origin}: its tokenizer ({len(tokenizer)} tokens) cannot encode the training data: {share:.0%} of the "
            f"words sampled from {len(sample)} training texts become {tokenizer.unk_token!r} (at most "
            f"{UNKNOWN_WORDS_LIMIT:.0%} allowed); give a folder with its tokenizer files (tokenizer.json or "
            "spiece.model, as save_pretrained writes them)")


def check_task_tokenizer(tokenizer, task, rows: list[dict], model_name: str | None) -> None:
    """`check_tokenizer_covers` on the training texts (sources and targets) of `task`'s first rows (None: no check)."""
    if tokenizer is None:
        return
    texts = [text for row in rows[:SAMPLE_TEXTS] for pair in task.to_training_texts(row) for text in pair]
    origin = f"--model {model_name}" if model_name else "the embedded tokenizer (runners/embedded)"
    check_tokenizer_covers(tokenizer, texts, f"{origin}, task {task.name}")


def tokenizer_folder(options: dict[str, Any], task_models: list[Path | None]) -> str | None:
    """Whose tokenizer a run uses: --model's; with --init-config, that of the shipped model the tasks
    are written for (`Task.model_dir`, one for all; world 2's for world2-*), so a random-init T5
    reads their words as that model does; None: the embedded language's (world 1).

    >>> tokenizer_folder({"model": "t5-small"}, [None]), tokenizer_folder({"init_config": ["d_model=8"]}, [None])
    ('t5-small', None)
    """
    if options.get("model") is not None or not options.get("init_config"):
        return options.get("model")
    shipped = set(task_models)
    return str(shipped.pop()) if len(shipped) == 1 and None not in shipped else None


def load_tokenizer(model_name: str | None, option: str = "--model"):
    """The tokenizer of `model_name`, or the embedded language's when None; `option` names it in errors."""
    if model_name is None:
        from runners.tasks.data import embedded_tokenizer

        return embedded_tokenizer()
    from transformers import AutoTokenizer

    _local_folder(model_name, option)  # a path that does not exist: said so, not tried on the Hub
    prepare_hub(model_name)  # an unreachable Hub: offline at once, with one note
    try:
        return AutoTokenizer.from_pretrained(model_name)
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"{option} {model_name!r}: could not load its tokenizer ({error}). Give a Hub name "
                             "(needs network access) or a local folder saved with save_pretrained") from None


def load_config(path: str, option: str = "--model"):
    """The config of the model at `path` (a folder or a Hub name); ModelLoadError if it cannot be read."""
    from transformers import AutoConfig

    prepare_hub(path)  # an unreachable Hub: offline at once, with one note
    try:
        return AutoConfig.from_pretrained(path)
    except (OSError, ValueError, KeyError) as error:
        raise ModelLoadError(f"{option} {path}: could not load its config ({' '.join(str(error).split())})") from None


def family_and_kind_of(config, origin: str) -> tuple[str, ModelKind]:
    """(family, kind) of a model of `config`; a model type no family declares is a one-line ModelLoadError."""
    from surgery.family_registry import FAMILIES

    try:
        return family_and_kind(config)
    except (SurgeryError, TrainingSetupError, ValueError) as error:
        declared = ", ".join(family.name for family in FAMILIES)
        raise ModelLoadError(f"{origin}: config.json has model_type {config.model_type!r}, which no declared family "
                             f"covers (declared: {declared}; {' '.join(str(error).split())[:200]})") from None


def configured_for(config, kind: ModelKind, task) -> Any:
    """`config` with what `kind` needs for `task` (a classifier's label count); None `task`: as it is."""
    for key, value in (kind.model_arguments(task) if task is not None else {}).items():
        setattr(config, key, value)
    return config


def build_model(model_name: str | None, tokenizer, init_overrides: dict[str, Any] | None = None,
                seed: int | None = None, random_init: bool = False, task=None) -> torch.nn.Module:
    """The model of a run, seeded with `seed` where weights are drawn.

    * `init_overrides` given: a small random-init T5 (``INIT_CONFIG_BASE`` updated by them);
    * `model_name` None: the shipped embedded pretrained T5;
    * otherwise the named pretrained model, in the class of its kind (`runners.finetune.model_kind`:
      seq2seq, causal LM, or sequence classifier sized for `task`'s labels);
    * `random_init`: the same architecture with weights drawn at random instead of loaded.
    """
    if seed is not None:
        from accelerate.utils import set_seed  # not transformers.set_seed: its import pulls in PEFT and bitsandbytes

        set_seed(seed)
    if init_overrides:
        if model_name is not None or random_init:
            raise ModelLoadError("--init-config sizes a random-init model; it cannot be combined with --model or "
                                 "--random-init")
        return T5ForConditionalGeneration(tiny_t5_config(tokenizer, init_overrides))
    import transformers

    path = model_name if model_name is not None else embedded_model_dir()
    config = load_config(path)
    _, kind = family_and_kind_of(config, f"--model {path}")
    auto_class = getattr(transformers, kind.auto_class)
    config = configured_for(config, kind, task)
    try:
        if random_init:
            return auto_class.from_config(config)
        return auto_class.from_pretrained(path, config=config)
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"--model {path!r}: could not load the model ({error}). Give a Hub name "
                             "(needs network access) or a local folder saved with save_pretrained") from None


def quiet_library_progress_bars() -> None:
    """``--no-progress`` silences transformers' own bars too (its "Loading weights" bar in every run's log)."""
    from transformers.utils import logging

    logging.disable_progress_bar()
