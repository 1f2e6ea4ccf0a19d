"""The model and tokenizer a run trains: a pretrained checkpoint, or a small random-init T5.

Without ``--model`` a run trains a small T5 initialised at random, with the tokenizer shipped for
the embedded demo (a 300-piece sentencepiece model): nothing to download, fast on a CPU. With
``--model NAME_OR_PATH`` the tokenizer and weights come from the Hugging Face Hub or a local
folder, as ``transformers`` loads them.

>>> from runners.tasks.data import embedded_tokenizer
>>> tokenizer = embedded_tokenizer()
>>> model = build_model(None, tokenizer, init_overrides={"d_model": 32, "num_layers": 1})
>>> model.config.vocab_size == len(tokenizer), model.config.d_model, model.config.num_decoder_layers
(True, 32, 1)
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import T5Config, T5ForConditionalGeneration

# The demo model: 0.69M parameters, about 3 s per epoch of the embedded task on one CPU thread.
# d_model 128 keeps every bundled recipe applicable (compacter's n = 4 divides d_model / 32 = 4).
DEMO_T5: dict[str, Any] = {"d_model": 128, "d_kv": 32, "d_ff": 256, "num_layers": 2, "num_heads": 4,
                           "dropout_rate": 0.1, "feed_forward_proj": "relu"}


class ModelLoadError(ValueError):
    """A --model or --init-config that cannot be loaded; the message says what was tried."""


def parse_init_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["d_model=64", "dropout_rate=0.1", "feed_forward_proj=gated-gelu"]`` → typed T5Config overrides.

    >>> parse_init_overrides(["d_model=64", "dropout_rate=0.1", "feed_forward_proj=gated-gelu"])
    {'d_model': 64, 'dropout_rate': 0.1, 'feed_forward_proj': 'gated-gelu'}
    """
    overrides: dict[str, Any] = {}
    known = T5Config().to_dict()
    for item in items or []:
        key, separator, text = item.partition("=")
        if not separator or not key:
            raise ModelLoadError(f"--init-config {item!r}: expected KEY=VALUE, e.g. d_model=128")
        if key not in known:
            raise ModelLoadError(f"--init-config {key!r} is not a T5Config field; e.g. d_model, d_ff, d_kv, num_layers, "
                                 "num_decoder_layers, num_heads, dropout_rate, feed_forward_proj")
        value: Any = text
        for parse in (int, float):
            try:
                value = parse(text)
                break
            except ValueError:
                continue
        overrides[key] = value
    return overrides


def tiny_t5_config(tokenizer, overrides: dict[str, Any] | None = None) -> T5Config:
    """A small T5 config sized to `tokenizer`'s vocabulary (DEMO_T5 updated by `overrides`)."""
    settings = {**DEMO_T5, **(overrides or {})}
    settings.setdefault("num_decoder_layers", settings["num_layers"])
    return T5Config(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                    decoder_start_token_id=tokenizer.pad_token_id, **settings)


def load_tokenizer(model_name: str | None):
    """The tokenizer of `model_name`, or the embedded demo's when None."""
    if model_name is None:
        from runners.tasks.data import embedded_tokenizer

        return embedded_tokenizer()
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(model_name)
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"--model {model_name!r}: could not load its tokenizer ({error}). Give a Hub name "
                             "(needs network access) or a local folder saved with save_pretrained") from None


def build_model(model_name: str | None, tokenizer, init_overrides: dict[str, Any] | None = None,
                seed: int | None = None) -> torch.nn.Module:
    """A pretrained seq2seq model, or (`model_name` None) a random-init T5 seeded with `seed`."""
    if seed is not None:
        from transformers import set_seed

        set_seed(seed)
    if model_name is None:
        return T5ForConditionalGeneration(tiny_t5_config(tokenizer, init_overrides))
    if init_overrides:
        raise ModelLoadError("--init-config sizes the random-init model; it cannot be combined with --model")
    from transformers import AutoModelForSeq2SeqLM

    try:
        return AutoModelForSeq2SeqLM.from_pretrained(model_name)
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"--model {model_name!r}: could not load the model ({error}). Give a Hub name "
                             "(needs network access) or a local folder saved with save_pretrained") from None
