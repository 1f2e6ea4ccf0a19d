"""The model and tokenizer a run trains: a pretrained checkpoint, or a T5 initialised at random.

Without ``--model`` a run trains the embedded pretrained T5 shipped in ``runners/embedded/model/``
(pretrained here by ``python -m runners.pretrain``) with its tokenizer: nothing to download, fast
on a CPU. With ``--model NAME_OR_PATH`` the tokenizer and weights come from the Hugging Face Hub
or a local folder, as ``transformers`` loads them. ``--random-init`` keeps the architecture and
draws the weights at random (the baseline that shows what pretraining is worth);
``--init-config KEY=VALUE ...`` sizes a small random-init T5 with the embedded tokenizer.

>>> from runners.tasks.data import embedded_tokenizer
>>> tokenizer = embedded_tokenizer()
>>> model = build_model(None, tokenizer, init_overrides={"d_model": 32, "num_layers": 1})
>>> model.config.vocab_size == len(tokenizer), model.config.d_model, model.config.num_decoder_layers
(True, 32, 1)
"""

from __future__ import annotations

import math
from typing import Any

import torch
from transformers import T5Config, T5ForConditionalGeneration

from runners.hub import prepare_hub

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


def load_tokenizer(model_name: str | None):
    """The tokenizer of `model_name`, or the embedded language's when None."""
    if model_name is None:
        from runners.tasks.data import embedded_tokenizer

        return embedded_tokenizer()
    from transformers import AutoTokenizer

    prepare_hub(model_name)  # an unreachable Hub: offline at once, with one note
    try:
        return AutoTokenizer.from_pretrained(model_name)
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"--model {model_name!r}: could not load its tokenizer ({error}). Give a Hub name "
                             "(needs network access) or a local folder saved with save_pretrained") from None


def build_model(model_name: str | None, tokenizer, init_overrides: dict[str, Any] | None = None,
                seed: int | None = None, random_init: bool = False) -> torch.nn.Module:
    """The model of a run, seeded with `seed` where weights are drawn.

    * `init_overrides` given: a small random-init T5 (``INIT_CONFIG_BASE`` updated by them);
    * `model_name` None: the shipped embedded pretrained T5;
    * otherwise the named pretrained seq2seq model;
    * `random_init`: the same architecture with weights drawn at random instead of loaded.
    """
    if seed is not None:
        from transformers import set_seed

        set_seed(seed)
    if init_overrides:
        if model_name is not None or random_init:
            raise ModelLoadError("--init-config sizes a random-init model; it cannot be combined with --model or "
                                 "--random-init")
        return T5ForConditionalGeneration(tiny_t5_config(tokenizer, init_overrides))
    from transformers import AutoConfig, AutoModelForSeq2SeqLM

    path = model_name if model_name is not None else embedded_model_dir()
    prepare_hub(path)  # an unreachable Hub: offline at once, with one note
    try:
        if random_init:
            return AutoModelForSeq2SeqLM.from_config(AutoConfig.from_pretrained(path))
        return AutoModelForSeq2SeqLM.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"--model {path!r}: could not load the model ({error}). Give a Hub name "
                             "(needs network access) or a local folder saved with save_pretrained") from None
