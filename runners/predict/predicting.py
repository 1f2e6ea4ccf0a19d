"""Load the base an adapter records, apply the adapter, generate for every row, write JSON lines.

    predict(adapter, record, task, rows, columns, output)
      ├─ sources            each row in the task's input format (task.format_source), checked first
      ├─ load_tokenizer     the recorded base's (the embedded language's for the shipped model)
      ├─ build_model        the recorded base: the embedded model, a local folder or a Hub id
      │                     (a random-init run's base rebuilt from its seed), or --model
      ├─ surgery.load_adapter   refuses a base whose architecture or weights differ from the adapter's
      └─ generate_predictions   batches sorted by length, under a tqdm progress bar (a decoder-only or
                                classifier base: its kind's predict, runners.finetune.model_kind), on a GPU
                                under the autocast the run evaluated with (autocast_dtype)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
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


PRECISIONS = ("recorded", "no", "bf16", "fp16")  # --precision; "recorded": the run's own (task.json)
AUTOCAST_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}


def autocast_dtype(precision: str, record: dict[str, Any], device_type: str) -> str | None:
    """The dtype generation runs under (a torch dtype's name), or None for full precision.

    The runner evaluates under autocast on a GPU only, so on a GPU "recorded" takes the run's own
    precision (task.json; none recorded: full precision) and the predictions are the run's; on the
    CPU there is no autocast, as in training.

    >>> autocast_dtype("recorded", {"precision": "bf16"}, "cuda")
    'bfloat16'
    >>> autocast_dtype("recorded", {"precision": "bf16"}, "cpu") is None
    True
    >>> autocast_dtype("no", {"precision": "bf16"}, "cuda") is None
    True
    >>> autocast_dtype("recorded", {}, "cuda") is None
    True
    """
    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision}: give one of {', '.join(PRECISIONS)}")
    chosen = record.get("precision", "no") if precision == "recorded" else precision
    if device_type != "cuda":
        return None
    if chosen not in ("no", *AUTOCAST_DTYPES):
        raise UsageError(f"the adapter's task.json records precision {chosen!r}; give --precision no, bf16 or fp16")
    return AUTOCAST_DTYPES.get(chosen)


def autocast_for(dtype_name: str | None) -> Callable[[], AbstractContextManager]:
    """A fresh context manager per batch: CUDA autocast to `dtype_name`, or nothing."""
    if dtype_name is None:
        return nullcontext
    import torch

    return lambda: torch.autocast("cuda", dtype=getattr(torch, dtype_name))


def predict(adapter: Path, record: dict[str, Any], task, rows: list[dict], columns: dict[str, str], output: Path, *,
            batch_size: int = 32, num_beams: int = 1, model_name: str | None = None, cpu: bool = False,
            progress: bool = True, precision: str = "recorded") -> str:
    """Write one JSON line per row (its columns and ``prediction``) to `output`; returns the line to print."""
    texts = sources(task, rows, columns)
    import torch
    from tqdm.auto import tqdm

    import surgery
    from runners.finetune.atomic import write_text
    from runners.finetune.generation import generate_predictions
    from runners.finetune.model_kind import SEQ2SEQ, kind_of_model
    from runners.finetune.task_data import jsonl, prediction_rows

    if not progress:
        from runners.finetune.model import quiet_library_progress_bars

        quiet_library_progress_bars()
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
    autocast = autocast_for(autocast_dtype(precision, record, device.type))
    model.to(device)
    encoded = kind.encode_inputs(tokenizer, texts, int(record.get("max_source_length") or 512))
    bar = tqdm(total=len(encoded), desc="predict", dynamic_ncols=True, disable=None if progress else True)
    if kind is SEQ2SEQ:
        predictions = generate_predictions(model, tokenizer, encoded, batch_size, max_new_tokens(tokenizer, record),
                                           device, autocast, progress=bar, num_beams=num_beams)
    else:
        predictions = kind.predict(model, tokenizer, task, encoded, batch_size, max_new_tokens(tokenizer, record),
                                   device, autocast, progress=bar)
    bar.close()
    write_text(output, jsonl(prediction_rows(task, rows, predictions, with_gold=False)))
    message = f"wrote {len(predictions):,} predictions to {output}"
    wanted = {"label": f"one of the labels {', '.join(task.labels or ())}", "number": "a number"}.get(task.target_kind)
    if wanted is not None:  # free text: any output answers
        invalid = sum(not task.is_valid_answer(prediction) for prediction in predictions)
        message += f" ({invalid:,} not {wanted})" if invalid else f" (each {wanted})"
    return message
