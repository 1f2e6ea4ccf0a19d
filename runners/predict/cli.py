"""The command line of `runners.predict`: every check before the model loads, then the predictions.

    main(argv)
      ├─ find_adapter(folder)       the adapter folder: FOLDER, FOLDER/best, or the one run below FOLDER
      ├─ read_task_record(adapter)  task.json beside the adapter (or in its run folder)
      ├─ input_rows(...)            the input file read, the text columns there
      ├─ check_output(...)          the output can be written (and is not the input)
      └─ predicting.predict(...)    base + tokenizer, adapter applied, batches generated, JSON lines written

Exit codes: 0 done; 2 a usage, file, adapter or base problem (one line on stderr, no traceback).

>>> find_adapter(Path("/no/such/folder"))
Traceback (most recent call last):
...
runners.errors.UsageError: /no/such/folder: no such folder
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from runners.finetune.errors import EXIT_USAGE, UsageError
from runners.output_folder import check_output_file

from .predicting import PRECISIONS

ADAPTER_FILE = "t5_surgery_adapter.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m runners.predict",
        description="Predict with an adapter trained by runners.finetune: one JSON line per row of --input, its "
                    "columns kept and the prediction added (a label word of the training label set for a "
                    "classification task). The base model, its tokenizer and the input format come from the "
                    "adapter's records.",
        epilog="example:\n  python -m runners.predict runs/x/own/compacter++/seed-42 --input new.csv "
               "--text-column review --output predictions.jsonl",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("folder", metavar="ADAPTER_OR_RUN_DIR",
                        help="a run folder of runners.finetune, its best/ folder, or an --output-dir with one run")
    parser.add_argument("--input", required=True, help="rows to predict: csv, tsv, json, jsonl or parquet")
    parser.add_argument("--text-column", metavar="A[,B]",
                        help="the input's column(s) for the task's text columns, in order (default: the same names "
                             "as in training)")
    parser.add_argument("--output", required=True, help="where the JSON lines go")
    parser.add_argument("--batch-size", type=int, default=32, help="rows per generate() call (default 32)")
    parser.add_argument("--num-beams", type=int, default=1, help="beam search width (default 1: greedy, as in "
                                                                 "training's evaluation)")
    parser.add_argument("--model", help="the base model to load instead of the recorded one (e.g. a local copy); "
                                        "it must be the base the adapter was trained on")
    parser.add_argument("--cpu", action="store_true", help="predict on CPU even if a GPU is present")
    parser.add_argument("--precision", choices=PRECISIONS, default="recorded",
                        help="autocast on a GPU (default recorded: the precision the run evaluated with, so the "
                             "predictions are the run's own; no: full precision). The CPU never autocasts")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def find_adapter(folder: Path) -> Path:
    """The adapter folder: `folder` itself, its ``best/``, or the one ``best/`` below it."""
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder")
    for candidate in (folder, folder / "best"):
        if (candidate / ADAPTER_FILE).is_file():
            return candidate
    found = sorted(path.parent for path in folder.rglob(f"best/{ADAPTER_FILE}"))
    if len(found) == 1:
        return found[0]
    if found:
        shown = ", ".join(str(path.parent) for path in found[:3]) + (", ..." if len(found) > 3 else "")
        raise UsageError(f"{folder} holds {len(found)} runs ({shown}); give one of them")
    from runners.finetune.library_baselines import PEFT_CONFIG

    if any((candidate / PEFT_CONFIG).is_file() for candidate in (folder, folder / "best")):
        raise UsageError(f"{folder}: a run of --recipe peft-lora holds Hugging Face PEFT's LoRA, not an adapter of ours; "
                         "load its best/ with peft.PeftModel.from_pretrained(base_model, 'RUN/best')")
    raise UsageError(f"{folder}: no adapter ({ADAPTER_FILE}) in it, in its best/ or in a run below it; give a run "
                     "folder of runners.finetune or its best/ folder")


def read_task_record(adapter: Path) -> tuple[dict[str, Any], Any]:
    """``(record, task)`` from task.json beside the adapter, else in its run folder."""
    from runners.tasks.task_record import TASK_RECORD_FILE, task_from_record

    path = next((p / TASK_RECORD_FILE for p in (adapter, adapter.parent) if (p / TASK_RECORD_FILE).is_file()), None)
    if path is None:
        raise UsageError(f"{adapter}: no {TASK_RECORD_FILE} beside the adapter or in its run folder, so its task's input "
                         "format and label set are unknown; predict needs an adapter trained by runners.finetune "
                         "(for another, see its README.md: generate by hand)")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(record, dict):
            raise ValueError("it does not hold a JSON object")
        return record, task_from_record(record)
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError) as error:
        raise UsageError(f"{path}: not a usable task record ({error}); it needs the task's input format "
                         "(task, text_columns) and label set (labels)") from None


def input_rows(path: Path, record: dict[str, Any], text_column: str | None) -> tuple[list[dict], dict[str, str]]:
    """The input's rows and ``{task column: input column}``; a missing column is a UsageError naming it."""
    from runners.tasks.data import DataError, read_rows

    expected = list(record["text_columns"])
    given = [c.strip() for c in text_column.split(",")] if text_column is not None else expected
    if not all(given) or len(given) != len(expected):
        raise UsageError(f"--text-column {text_column!r}: the task reads {len(expected)} text column(s) "
                         f"({', '.join(expected)}); name {len(expected)} of your input's columns, comma-separated")
    try:
        located = read_rows(path)
    except DataError as error:
        raise UsageError(f"--input {error}") from None
    if not located:
        raise UsageError(f"--input {path}: the file holds no rows")
    for where, row in located:
        missing = [column for column in given if column not in row]
        if missing:
            hint = "" if text_column is not None else " (name yours with --text-column)"
            raise UsageError(f"--input {path}, {where}: no column {missing[0]!r}{hint}; columns found: "
                             f"{', '.join(map(str, row)) or '(none)'}")
    return [row for _, row in located], dict(zip(expected, given))


def check_output(output: Path, input_path: Path) -> None:
    if output.exists() and output.resolve() == input_path.resolve():
        raise UsageError(f"--output {output} is the --input file; give another path")
    check_output_file(output, "--output", "predictions.jsonl")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        for name in ("batch_size", "num_beams"):
            value = getattr(args, name)
            if not 1 <= value <= 4096:
                raise UsageError(f"--{name.replace('_', '-')} {value}: give a whole number in [1, 4096]")
        adapter = find_adapter(Path(args.folder))
        record, task = read_task_record(adapter)
        rows, columns = input_rows(Path(args.input), record, args.text_column)
        check_output(Path(args.output), Path(args.input))
        from .predicting import predict

        message = predict(adapter, record, task, rows, columns, Path(args.output), batch_size=args.batch_size,
                          num_beams=args.num_beams, model_name=args.model, cpu=args.cpu, progress=not args.no_progress,
                          precision=args.precision)
    except UsageError as error:
        print("error: " + " ".join(str(error).split()), file=sys.stderr)
        return EXIT_USAGE
    print(message)
    return 0
