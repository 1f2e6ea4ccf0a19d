"""The adapters of a spliced model, recorded in its transformers config (``config.t5_surgery``).

transformers' own ``model.save_pretrained(folder)`` writes the model's config beside its weights,
and the weights hold every tensor surgery added under its live name. So the record below — each
adapter's name and recipe, in the order applied, and which are in effect — is all
`surgery.from_pretrained` needs to rebuild the spliced model from such a folder: no method of the
user's model is replaced. The engine keeps the record current at the end of every `apply`,
`remove`, `fold` and `set_active`, and deletes it with the last adapter.

>>> import surgery
>>> from transformers import T5Config, T5ForConditionalGeneration
>>> model = T5ForConditionalGeneration(T5Config(d_model=32, d_kv=8, d_ff=32, num_layers=1, num_heads=4, vocab_size=20))
>>> record = surgery.apply(model, "adapter").config.t5_surgery
>>> [a["name"] for a in record["adapters"]], record["active"]
(['default'], ['default'])
>>> surgery.remove(model, "default"); hasattr(model.config, "t5_surgery")
False
"""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

from .errors import CheckpointError
from .naming import STATE

CONFIG_KEY = "t5_surgery"
RECORD_FORMAT = 1


def record_adapters(model: nn.Module) -> None:
    """Write (or, without adapters, delete) ``model.config.t5_surgery``; a model without a config is left alone."""
    config = getattr(model, "config", None)
    if config is None:
        return
    state = getattr(model, STATE, None)
    if state is None or not state.records:
        if hasattr(config, CONFIG_KEY):
            delattr(config, CONFIG_KEY)
        return
    setattr(config, CONFIG_KEY, {
        "format": RECORD_FORMAT,
        "adapters": [{"name": r.name, "recipe": copy.deepcopy(r.recipe)} for r in state.records.values()],
        "active": list(state.routing.active),
    })


def recorded_adapters(config: dict[str, Any], where: str) -> dict[str, Any] | None:
    """The record in a config.json's contents (None: the folder holds a plain model), checked."""
    record = config.get(CONFIG_KEY)
    if record is None:
        return None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT or not isinstance(record.get("adapters"), list) \
            or not all(isinstance(a, dict) and isinstance(a.get("name"), str) and isinstance(a.get("recipe"), dict)
                       for a in record["adapters"]):
        raise CheckpointError(f"{where}: {CONFIG_KEY!r} is not a record this version can read (format "
                              f"{record.get('format') if isinstance(record, dict) else record!r}; expected {RECORD_FORMAT} "
                              "with a list of adapters, each a name and a recipe)")
    return record
