"""The model card (README.md) written beside every adapter: recipe, counts, base, how to load it.

The card is Hub-style markdown with YAML front matter (``library_name``, ``base_model``, tags), so a
pushed adapter shows up with its base model. It is rendered from the checkpoint's own record
(`surgery.checkpoint`), never from the live model, so it says exactly what the folder holds.

>>> record = {"format": "t5-surgery-adapter/2", "kind": "adapter",
...           "recipe": {"name": "compacter++", "method": "adapter", "options": {"n": 4}, "sites": ["after_ffn"]},
...           "groups": {"inserted modules": ["a"], "shared": ["b"]},
...           "counts": {"inserted modules": 1000, "shared": 64}, "tensors": 2, "base_parameters": 100000,
...           "base": {"model_class": "T5ForConditionalGeneration"},
...           "base_model": {"name_or_path": "google-t5/t5-base", "revision": None}}
>>> card = render_model_card(record)
>>> "| trainable | 1,064 |" in card and "base_model: google-t5/t5-base" in card
True
"""

from __future__ import annotations

import json
from typing import Any

import yaml

CARD_FILE = "README.md"


def _hub_name(base_model: dict[str, Any]) -> str | None:
    """The base model's Hub id, if it is one (not a local folder)."""
    name = base_model.get("repo_id") or base_model.get("name_or_path")
    if not name or base_model.get("local"):
        return base_model.get("repo_id")
    return name


def render_model_card(record: dict[str, Any], location: str = "path/to/this/folder") -> str:
    """Markdown for a checkpoint `record` (the content of its JSON file); `location` goes into the load example."""
    recipe = record["recipe"]
    base = record.get("base", {})
    base_model = record.get("base_model") or {}
    hub_name = _hub_name(base_model)
    counts: dict[str, int] = record.get("counts", {})
    trainable = sum(counts.values())
    base_parameters = record.get("base_parameters") or 0
    percent = f" ({100 * trainable / base_parameters:.4f} % of {base_parameters:,} base parameters)" if base_parameters else ""
    front = {"library_name": "t5-surgery", "tags": ["t5-surgery", "parameter-efficient-fine-tuning", str(recipe.get("method"))]}
    if recipe.get("name"):
        front["tags"].append(str(recipe["name"]))
    if hub_name:
        front["base_model"] = hub_name
    model_class = base.get("model_class", "AutoModel")
    origin = base_model.get("name_or_path") or "(not recorded: a model built in memory)"
    revision = base_model.get("revision") or "not recorded"
    whole = record.get("kind") == "model"

    lines = ["---", yaml.safe_dump(front, sort_keys=False).strip(), "---", "",
             f"# {recipe.get('name', 'custom')} {'model' if whole else 'adapter'} for {model_class}", "",
             ("A spliced model saved with `save_pretrained`: the base weights, the inserted modules and the recipe."
              if whole else "A t5-surgery adapter: only the trained tensors and the recipe that creates their modules."),
             "It is not a PEFT adapter: `peft.PeftModel.from_pretrained` cannot read it; `surgery` can.", "",
             "## Base model", "",
             f"* class: `{model_class}` ({base.get('model_type', '?')}, d_model {base.get('d_model', '?')}, "
             f"{base.get('num_layers', '?')} + {base.get('num_decoder_layers', '?')} blocks)",
             f"* name or path: `{origin}`", f"* revision: {revision}", "",
             "## Recipe", "", "```yaml", yaml.safe_dump(json.loads(json.dumps(recipe, default=str)), sort_keys=False).strip(),
             "```", "", "## Trainable parameters", "", "| group | parameters |", "| --- | ---: |"]
    lines += [f"| {group} | {count:,} |" for group, count in counts.items()]
    lines += [f"| trainable | {trainable:,} |", "", f"{trainable:,} numbers in {record.get('tensors', '?')} tensors{percent}.", "",
              "## How to load", "", "```python", "import surgery", ""]
    if whole:
        lines += [f'model = surgery.from_pretrained("{location}")   # the base, the modules and their trained values']
    else:
        lines += [f'model = surgery.from_pretrained("{location}")   # loads the recorded base model, then this adapter',
                  "", "# or, with the base model already loaded:",
                  f"# from transformers import {model_class}",
                  f'# model = {model_class}.from_pretrained("{base_model.get("name_or_path") or "BASE"}")',
                  f'# surgery.load_adapter(model, "{location}")']
    lines += ["```", ""]
    return "\n".join(lines)
