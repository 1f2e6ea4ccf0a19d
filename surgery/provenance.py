"""The base model an adapter checkpoint belongs to: its architecture, where it came from, and the check at load.

* `base_fingerprint` — model class, the config fields that shape the network, a hash of every base
  parameter's name and shape (a model of another architecture is always refused);
* `base_origin` — the base's Hub name or folder and revision, where known;
* `check_base` — the architecture, then (unless allowed otherwise) the sample of the base weights
  (`surgery.fingerprint`), against a checkpoint's record.

No adapter method writes the base tensors (adapters train copies: `surgery.base_copies`), so the
base values compared are the model's own.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from torch import nn

from .distributed import is_sharded, original_class, sharded_state, unwrap
from .errors import CheckpointError
from .fingerprint import weight_differences
from .naming import is_added
from .quantization import logical_shape
from .checkpoint_tensors import clean_name as _clean

# The config fields that shape the network or change its forward: sizes, the FFN's activation and
# gating, the layer norms' epsilon, the relative-position buckets, and whether the decoder's output is
# rescaled by d_model^-0.5 before the tied output layer (transformers 5 keeps that in
# scale_decoder_outputs; `T5Config(tie_word_embeddings=False)` turns it off and keeps the weights tied).
CONFIG_FIELDS = (
    "model_type", "d_model", "d_ff", "d_kv", "num_heads", "num_layers", "num_decoder_layers", "vocab_size",
    "feed_forward_proj", "tie_word_embeddings", "relative_attention_num_buckets", "relative_attention_max_distance",
    "scale_decoder_outputs", "dense_act_fn", "is_gated_act", "layer_norm_epsilon", "is_encoder_decoder",
)
# (A file written before a field was recorded has no value for it: that field is not compared.)


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
    return {"model_class": original_class(inner).__name__, **{f: getattr(config, f, None) for f in CONFIG_FIELDS},
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


def check_base(config: dict[str, Any], model: nn.Module, directory: Path, trained: set[str] | None) -> None:
    """Architecture always; the weight sample too unless `trained` is None (allow_other_base, or sharded)."""
    inner = unwrap(model)
    expected, found = config["base"], base_fingerprint(inner, parameter_shapes(model))
    differences = [f"{key}: checkpoint {expected.get(key)!r}, model {found.get(key)!r}"
                   for key in found if key in expected and expected.get(key) != found.get(key)]
    if differences:
        raise CheckpointError(f"{directory} was saved from another base model; differences: " + "; ".join(differences))
    if trained is None:
        return
    saved = config.get("base_weights")
    if saved is None and "checksums" in config:  # every file written since checksums samples the base (or says why not)
        raise CheckpointError(
            f"{directory} records no fingerprint of its base weights (\"base_weights\" is missing: the field was deleted, "
            "or an older t5-surgery saved it from a sharded model), so it cannot be checked against this base; "
            "pass load_adapter(..., allow_other_base=True) to load it without that check")
    if isinstance(saved, dict) and "not_sampled" in saved:
        return  # saved from a sharded model: the architecture is all it records (and the record checksum covers that)
    weights = weight_differences(saved, inner, trained)
    if weights is not None:
        raise CheckpointError(
            f"{directory} was saved from a base with other weights: {weights}. Load it into the base it was trained on, "
            "or pass load_adapter(..., allow_other_base=True) to load it into this one anyway")


