"""The model card (README.md) written beside every adapter: recipe, counts, base, how to load and predict.

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

With the task the adapter was trained on (the ``task.json`` that ``runners.finetune`` writes beside
it), the card says how to predict with it in one command:

>>> task = {"task": "embedded-sst2", "task_type": "classification", "text_columns": ["sentence"],
...         "input_template": "sst2 sentence: {sentence}", "labels": ["negative", "positive"]}
>>> print(render_model_card(record, "runs/x/best", task=task).split("## How to predict")[1].split("```")[1])
bash
python -m runners.predict runs/x/best --input rows.csv --text-column sentence --output predictions.jsonl
<BLANKLINE>
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


def _predict_section(location: str, base_name: str, task: dict[str, Any] | None) -> list[str]:
    """How to predict: one `runners.predict` command when the task is known, else `generate` by hand."""
    lines = ["## How to predict", ""]
    if task is None:
        return lines + [
            "The model writes its answer as text: give it inputs in the format it was trained on and decode "
            "what `generate` writes.", "", "```python", "from transformers import AutoTokenizer", "",
            f'tokenizer = AutoTokenizer.from_pretrained("{base_name}")',
            'batch = tokenizer(["<an input, formatted as in training>"], return_tensors="pt")',
            "print(tokenizer.batch_decode(model.generate(**batch, max_new_tokens=16), skip_special_tokens=True))",
            "```", "",
            "An adapter trained by `python -m runners.finetune` also holds `task.json` (input format, labels); "
            "for it, `python -m runners.predict FOLDER --input FILE --output OUT.jsonl` predicts a whole file.", ""]
    columns = ",".join(task.get("text_columns") or [])
    labels = task.get("labels")
    lines += [f"A {task.get('task_type', 'text-to-text')} adapter for the task `{task.get('task')}`. For a csv, tsv, "
              "json, jsonl or parquet file with the text column(s), one JSON line of predictions per row "
              "(the row's other columns kept):", "", "```bash",
              f"python -m runners.predict {location} --input rows.csv --text-column {columns} --output predictions.jsonl",
              "```", "",
              f"Each row becomes the model's input `{task.get('input_template')}` (`--text-column` names your file's "
              f"column(s) for {', '.join(f'`{c}`' for c in task.get('text_columns') or [])}, in that order)."]
    if labels:
        lines += [f"Predictions are label words: {', '.join(f'`{label}`' for label in labels)}."]
    elif task.get("task_type") == "regression":
        lines += ["Predictions are numbers written as text."]
    return lines + [""]


def render_model_card(record: dict[str, Any], location: str = "path/to/this/folder",
                      task: dict[str, Any] | None = None) -> str:
    """Markdown for a checkpoint `record` (the content of its JSON file); `location` goes into the load example.

    `task`: the task record of the adapter (``task.json``, `runners.tasks.task_record`), for the
    command that predicts with it; without it the card shows `generate` by hand.
    """
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
    lines += _predict_section(location, base_model.get("name_or_path") or "BASE", task)
    return "\n".join(lines)
