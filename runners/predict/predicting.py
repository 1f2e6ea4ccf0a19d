"""Load the base an adapter records, apply the adapter, generate for every row, write JSON lines.

    predict(adapter, record, task, rows, columns, output)
      ├─ sources            each row in the task's input format (task.format_source), checked first
      ├─ load_tokenizer     the recorded base's (the embedded language's for the shipped model)
      ├─ build_model        the recorded base: the embedded model, a local folder or a Hub id
      │                     (a random-init run's base rebuilt from its seed), or --model
      ├─ surgery.load_adapter   refuses a base whose architecture or weights differ from the adapter's
      └─ generate_predictions   batches sorted by length, under a tqdm progress bar (a decoder-only or
                                classifier base: its kind's predict, runners.finetune.model_kind)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runners.finetune.errors import UsageError


def sources(task, rows: Sequence[dict], columns: dict[str, str]) -> list[str]:
    """Each row as the model's input; ``columns`` maps the task's text columns to the input's."""
    texts = []
    for number, row in enumerate(rows, start=1):
        renamed = {**row, **{task_column: row[given] for task_column, given in columns.items()}}
        try:
            texts.append(task.format_source(task, renamed))
        except (ValueError, TypeError, KeyError) as error:
            raise UsageError(f"--input row {number}: {error}") from None
    return texts


def load_base(record: dict[str, Any], model_name: str | None, task=None):
    """``(model, tokenizer)``: --model if given, else the base recorded in the task record (a classifier
    sized for `task`'s labels)."""
    from runners.finetune.model import (ModelLoadError, build_model, load_tokenizer, parse_init_overrides,
                                        tokenizer_folder)

    base = record.get("base") or {}
    try:
        if model_name is not None:
            tokenizer = load_tokenizer(model_name)
            return build_model(model_name, tokenizer, task=task), tokenizer
        # The tokenizer the run used: a random-init base of world 2's tasks reads them with world 2's.
        tokenizer = load_tokenizer(tokenizer_folder(base, [getattr(task, "model_dir", None)]))
        overrides = parse_init_overrides(base.get("init_config") or None)
        model = build_model(base.get("model"), tokenizer, overrides, seed=base.get("seed"),
                            random_init=bool(base.get("random_init")), task=task)
        return model, tokenizer
    except ModelLoadError as error:
        raise UsageError(f"the adapter's base model: {error}; or give the base with --model") from None


def max_new_tokens(tokenizer, record: dict[str, Any]) -> int:
    """The longest label word's tokens + 2 (as training evaluates), else the training's target length
    (also when the model writes a rationale before the label)."""
    limit = int(record.get("max_target_length") or 128)
    labels = record.get("labels")
    if labels and not record.get("rationale_column"):
        return min(limit, max(len(ids) for ids in tokenizer(list(labels))["input_ids"]) + 2)
    return limit


def predict(adapter: Path, record: dict[str, Any], task, rows: list[dict], columns: dict[str, str], output: Path, *,
            batch_size: int = 32, num_beams: int = 1, model_name: str | None = None, cpu: bool = False,
            progress: bool = True) -> str:
    """Write one JSON line per row (its columns and ``prediction``) to `output`; returns the line to print."""
    texts = sources(task, rows, columns)
    import torch
    from tqdm.auto import tqdm

    import surgery
    from runners.finetune.atomic import write_text
    from runners.finetune.generation import generate_predictions
    from runners.finetune.model_kind import SEQ2SEQ, kind_of_model
    from runners.finetune.task_data import jsonl, prediction_rows

    model, tokenizer = load_base(record, model_name, task)
    kind = kind_of_model(model)  # seq2seq, causal or classifier (runners.finetune.model_kind)
    if num_beams > 1 and kind is not SEQ2SEQ:
        raise UsageError(f"--num-beams {num_beams}: beam search is for sequence-to-sequence models; this base is "
                         f"a {kind.name} model (give --num-beams 1)")
    try:
        surgery.load_adapter(model, adapter)
    except surgery.SurgeryError as error:
        raise UsageError(f"the base model does not fit the adapter: {error}") from None
    device = torch.device("cuda" if torch.cuda.is_available() and not cpu else "cpu")
    model.to(device)
    encoded = kind.encode_inputs(tokenizer, texts, int(record.get("max_source_length") or 512))
    bar = tqdm(total=len(encoded), desc="predict", dynamic_ncols=True, disable=None if progress else True)
    if kind is SEQ2SEQ:
        predictions = generate_predictions(model, tokenizer, encoded, batch_size, max_new_tokens(tokenizer, record),
                                           device, progress=bar, num_beams=num_beams)
    else:
        predictions = kind.predict(model, tokenizer, task, encoded, batch_size, max_new_tokens(tokenizer, record),
                                   device, progress=bar)
    bar.close()
    output.parent.mkdir(parents=True, exist_ok=True)
    write_text(output, jsonl(prediction_rows(task, rows, predictions, with_gold=False)))
    message = f"wrote {len(predictions):,} predictions to {output}"
    labels = record.get("labels")
    if labels:
        outside = sum(task.answer(prediction) not in labels for prediction in predictions)
        message += f" ({outside:,} not one of the labels {', '.join(labels)})" if outside else \
            f" (each one of the labels {', '.join(labels)})"
    return message
