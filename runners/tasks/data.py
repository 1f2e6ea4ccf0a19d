"""Load a task's rows and split them the way the Compacter paper does.

Call tree::

    load_task_splits(task, data_dir, seed, max_train)
    ├── load_original_splits(task, data_dir)     {"train": rows, task.test_split: rows}
    │   ├── load_from_hub(task)                  data_dir is None: datasets.load_dataset(*task.hub)
    │   └── read_split_file(path, task)          data_dir given: {split}.csv|.tsv|.json|.jsonl|.parquet
    ├── split_like_paper(task, original, seed)   {"train", "validation", "test"}
    └── subsample(rows, max_train, seed)         low-resource mode, after the split

The paper's split protocol (Section 4):

* small sets (cola, rte, mrpc, stsb and every SuperGLUE task but record): the original
  validation set, shuffled with ``seed``, is halved: first half validation, second half test.
  MultiRC is halved by question, so no question has answers in both halves.
* large sets (qqp, qnli, sst2, mnli, record): 1,000 training rows drawn with ``seed`` become the
  validation set; the original validation set (mnli: ``validation_matched``) is the test set.
* presplit (the embedded benchmark): the shipped files already hold train/validation/test.

Local files use the original (Hugging Face) column names. ``label`` may be an index or a label
name (``"entailment"``). CSV/TSV cells are text, so they get the Hub's types back: a numeric
``label`` becomes an int (stsb: a float) and list/dict columns (multirc ``idx``, record
``entities``/``answers``) are decoded from JSON. TSV files are read without
quote handling, as GLUE ships them. Every row is checked by formatting it with
:meth:`Task.to_text`, so a bad label is reported with its file and line.

Everything that can go wrong with the data raises :class:`DataError` with a message naming the
file (and line, column, or expected paths) — never a parser's traceback. That is why local files
go through these small readers and not ``datasets.load_dataset("csv", ...)``, whose errors name
neither the file's line nor the task's column.

>>> splits = load_embedded("embedded-sst2")
>>> {name: len(rows) for name, rows in splits.items()}
{'train': 2000, 'validation': 500, 'test': 500}
"""

from __future__ import annotations

import csv
import json
import random
import re
import warnings
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path

from runners.hub import prepare_hub

from .registry import Task, get_task

__all__ = [
    "DataError",
    "FILE_SUFFIXES",
    "LARGE_VALIDATION_SIZE",
    "load_task_splits",
    "load_original_splits",
    "load_from_hub",
    "find_split_file",
    "read_rows",
    "read_split_file",
    "split_like_paper",
    "subsample",
    "load_embedded",
    "embedded_tokenizer",
]

FILE_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".parquet")
LARGE_VALIDATION_SIZE = 1000

Rows = list[dict]


class DataError(ValueError):
    """The data for a task is missing or unusable; the message says which file and why."""


# --- entry point ----------------------------------------------------------------------------


def load_task_splits(
    task: Task | str,
    data_dir: str | Path | None = None,
    seed: int = 42,
    max_train: int | None = None,
) -> dict[str, Rows]:
    """``{"train", "validation", "test"}`` row lists of ``task``, split as in the paper.

    Args:
        task: a :class:`Task` or its name.
        data_dir: folder with ``{split}.{csv,tsv,json,jsonl,parquet}`` files; ``None`` loads
            the task from the Hugging Face Hub (needs ``datasets`` and a network).
        seed: seeds the validation/test split and the low-resource sample.
        max_train: keep only this many training rows, sampled with ``seed`` after the split
            (the paper's low-resource setting); all rows when it exceeds the training set.

    >>> import tempfile, json
    >>> folder = Path(tempfile.mkdtemp())
    >>> for split, n in (("train", 6), ("validation", 4)):
    ...     rows = [{"sentence1": f"a{i}", "sentence2": f"b{i}", "label": i % 2} for i in range(n)]
    ...     _ = (folder / f"{split}.jsonl").write_text("\\n".join(map(json.dumps, rows)))
    >>> splits = load_task_splits("rte", folder, seed=0, max_train=3)
    >>> [len(splits[name]) for name in ("train", "validation", "test")]
    [3, 2, 2]
    """
    task = get_task(task) if isinstance(task, str) else task
    original = load_original_splits(task, data_dir)
    splits = split_like_paper(task, original, seed)
    if max_train is not None:
        splits["train"] = subsample(splits["train"], max_train, seed)
    return splits


def load_original_splits(task: Task, data_dir: str | Path | None = None) -> dict[str, Rows]:
    """The raw splits ``task.original_splits`` from the Hub (``data_dir=None``) or local files."""
    if data_dir is None:
        if task.local_dir is not None:
            data_dir = task.local_dir
        else:
            return load_from_hub(task)
    folder = Path(data_dir)
    if not folder.is_dir():
        raise DataError(f"task {task.name!r}: data folder {str(folder)!r} does not exist")
    return {split: read_split_file(find_split_file(folder, split, task), task) for split in task.original_splits}


def load_from_hub(task: Task) -> dict[str, Rows]:
    """``datasets.load_dataset(*task.hub)``, the splits the task needs as lists of dicts."""
    if task.hub is None:
        raise DataError(f"task {task.name!r} is not on the Hugging Face Hub; give a data folder")
    try:
        from datasets import load_dataset

        prepare_hub(task.hub[0])  # an unreachable Hub: offline at once, with one note
        dataset = load_dataset(*task.hub)
        return {split: [dict(row) for row in dataset[split]] for split in task.original_splits}
    except Exception as error:  # network, missing package, unknown config: say what was tried
        raise DataError(
            f"task {task.name!r}: could not load {task.hub[0]!r} config {task.hub[1]!r} from the Hugging Face Hub "
            f"({type(error).__name__}: {error}); give a data folder with local "
            f"{'/'.join(task.original_splits)} files instead"
        ) from None


# --- local files ----------------------------------------------------------------------------


def find_split_file(data_dir: Path, split: str, task: Task | None = None) -> Path:
    """The one file ``data_dir/{split}{suffix}`` for a suffix in :data:`FILE_SUFFIXES`."""
    candidates = [data_dir / f"{split}{suffix}" for suffix in FILE_SUFFIXES]
    found = [path for path in candidates if path.is_file()]
    owner = f"task {task.name!r}: " if task is not None else ""
    if not found:
        raise DataError(
            f"{owner}no file for the {split!r} split; expected one of: " + ", ".join(str(path) for path in candidates)
        )
    if len(found) > 1:
        raise DataError(f"{owner}more than one file for the {split!r} split: {', '.join(map(str, found))}; keep one")
    return found[0]


def read_rows(path: str | Path) -> list[tuple[str, dict]]:
    """``(where, row)`` pairs of a csv/tsv/json/jsonl/parquet file, ``where`` as ``"line 7"`` or ``"row 3"``.

    Every problem (no such file, an unknown extension, a malformed file) is a :class:`DataError`
    naming the file.
    """
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{path}: unsupported file type {path.suffix or '(no extension)'!r}; "
                        f"use one of {', '.join(FILE_SUFFIXES)}")
    if not path.is_file():
        raise DataError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        return reader(path)
    except DataError:
        raise
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: malformed file, not UTF-8 text ({error.reason} at byte {error.start})") from None
    except Exception as error:  # the parser's own complaint (or the OS's), attached to the file name
        raise DataError(f"{path}: malformed file ({type(error).__name__}: {error})") from None


def read_split_file(path: str | Path, task: Task) -> Rows:
    """Rows of one local split file, with the task's columns checked and every row validated."""
    path = Path(path)
    located_rows = read_rows(path)
    cells_are_text = path.suffix.lower() in (".csv", ".tsv")
    rows = []
    for where, row in located_rows:
        _check_columns(path, where, row, task)
        row = _decode_cells(path, where, row, task, cells_are_text)
        try:
            task.to_text(row)
        except (ValueError, TypeError, KeyError) as error:
            raise DataError(f"{path}, {where}: {error}") from None
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: the file holds no rows")
    return rows


def _check_columns(path: Path, where: str, row: dict, task: Task) -> None:
    missing = [column for column in task.columns if column not in row]
    if missing:
        raise DataError(
            f"{path}, {where}: missing column {missing[0]!r} needed by task {task.name!r}; "
            f"columns found: {', '.join(map(str, row)) or '(none)'}; required: {', '.join(task.columns)}"
        )


def _decode_cells(path: Path, where: str, row: dict, task: Task, cells_are_text: bool) -> dict:
    """Give text cells the Hub's types: numeric labels as numbers, list/dict columns from JSON."""
    row = dict(row)
    label = row.get("label")
    if cells_are_text and isinstance(label, str):
        if task.labels is not None and re.fullmatch(r"\s*[+-]?\d+\s*", label):
            row["label"] = int(label)  # "1" -> 1; label names stay text
        elif task.labels is None:
            try:
                row["label"] = float(label)  # stsb's similarity score
            except ValueError:
                pass  # left as text: to_text reports it with the file and line
    for column in task.structured_columns:
        if isinstance(row.get(column), str):
            try:
                row[column] = json.loads(row[column])
            except json.JSONDecodeError:
                raise DataError(
                    f"{path}, {where}: column {column!r} must hold JSON (a list or object), "
                    f"got {row[column][:80]!r}"
                ) from None
    return row


# Rows paired with where they are in their file ("line 7", "row 3"), for error messages.
LocatedRows = list[tuple[str, dict]]


def _read_delimited(path: Path, delimiter: str, quoting: int) -> LocatedRows:
    with path.open(encoding="utf-8-sig", newline="") as file:  # -sig: a spreadsheet's byte-order mark
        reader = csv.DictReader(file, delimiter=delimiter, quoting=quoting)
        if reader.fieldnames is None:
            raise DataError(f"{path}: malformed file, it is empty (no header line)")
        rows = []
        for row in reader:
            # DictReader files extra cells under None and fills missing ones with None.
            if None in row or any(value is None for value in row.values()):
                raise DataError(
                    f"{path}, line {reader.line_num}: malformed row, expected {len(reader.fieldnames)} fields "
                    f"({', '.join(reader.fieldnames)})"
                )
            rows.append((f"line {reader.line_num}", row))
        return rows


def _read_csv(path: Path) -> LocatedRows:
    return _read_delimited(path, ",", csv.QUOTE_MINIMAL)


def _read_tsv(path: Path) -> LocatedRows:
    return _read_delimited(path, "\t", csv.QUOTE_NONE)


def _as_row(path: Path, where: str, value: object) -> dict:
    if not isinstance(value, dict):
        raise DataError(f"{path}, {where}: malformed row, expected a JSON object, got {type(value).__name__}")
    return value


def _read_jsonl(path: Path) -> LocatedRows:
    rows = []
    with path.open(encoding="utf-8") as file:
        for line_number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}, line {line_number}: malformed JSON ({error.msg})") from None
            rows.append((f"line {line_number}", _as_row(path, f"line {line_number}", value)))
    return rows


def _read_json(path: Path) -> LocatedRows:
    """A JSON list of objects, an object holding one such list (``{"data": [...]}``), or JSON lines."""
    text = path.read_text(encoding="utf-8")
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return _read_jsonl(path)  # many ".json" files (the Hub's among them) are JSON lines
    if isinstance(value, dict):
        lists = [item for item in value.values() if isinstance(item, list)]
        if len(lists) != 1:
            raise DataError(f"{path}: malformed file, expected a list of rows or an object with one list of rows")
        value = lists[0]
    if not isinstance(value, list):
        raise DataError(f"{path}: malformed file, expected a list of rows, got {type(value).__name__}")
    return [(f"row {i}", _as_row(path, f"row {i}", item)) for i, item in enumerate(value, start=1)]


def _read_parquet(path: Path) -> LocatedRows:
    import pyarrow.parquet

    return [(f"row {i}", row) for i, row in enumerate(pyarrow.parquet.read_table(path).to_pylist(), start=1)]


_READERS: dict[str, Callable[[Path], LocatedRows]] = {
    ".csv": _read_csv,
    ".tsv": _read_tsv,
    ".json": _read_json,
    ".jsonl": _read_jsonl,
    ".parquet": _read_parquet,
}


# --- the paper's splits ---------------------------------------------------------------------


def _multirc_question(row: dict) -> Hashable:
    idx = row.get("idx")
    if isinstance(idx, dict) and "paragraph" in idx and "question" in idx:
        return (idx["paragraph"], idx["question"])
    raise DataError(f"task 'multirc': idx must be an object with 'paragraph' and 'question', got {idx!r}")


# Tasks whose rows must stay together when a split is halved: rows -> group key.
SPLIT_GROUPS: dict[str, Callable[[dict], Hashable]] = {"multirc": _multirc_question}


def _shuffled_groups(rows: Rows, seed: int, group_of: Callable[[dict], Hashable] | None) -> list[Rows]:
    """Rows bundled by ``group_of`` (one row per bundle without it), bundles in seeded random order."""
    if group_of is None:
        groups = [[row] for row in rows]
    else:
        by_key: dict[Hashable, Rows] = {}
        for row in rows:
            by_key.setdefault(group_of(row), []).append(row)
        groups = list(by_key.values())
    random.Random(seed).shuffle(groups)
    return groups


def _flatten(groups: Iterable[Rows]) -> Rows:
    return [row for group in groups for row in group]


def split_like_paper(task: Task, original: dict[str, Rows], seed: int) -> dict[str, Rows]:
    """``{"train", "validation", "test"}`` from the original splits, by ``task.size``.

    >>> rows = [{"sentence": str(i), "label": 0} for i in range(10)]
    >>> splits = split_like_paper(get_task("cola"), {"train": rows, "validation": rows[:5]}, seed=1)
    >>> len(splits["train"]), len(splits["validation"]), len(splits["test"])
    (10, 2, 3)
    """
    if task.size == "presplit":
        return {split: list(original[split]) for split in ("train", "validation", "test")}
    if task.size == "small":
        groups = _shuffled_groups(original[task.test_split], seed, SPLIT_GROUPS.get(task.name))
        if len(groups) < 2:
            raise DataError(f"task {task.name!r}: the {task.test_split!r} split needs at least 2 rows to be halved")
        half = len(groups) // 2
        return {
            "train": list(original["train"]),
            "validation": _flatten(groups[:half]),
            "test": _flatten(groups[half:]),
        }
    train = original["train"]
    if len(train) <= LARGE_VALIDATION_SIZE:
        raise DataError(
            f"task {task.name!r} is a large task: {LARGE_VALIDATION_SIZE} training rows become the validation set, "
            f"so it needs more than {LARGE_VALIDATION_SIZE} training rows; found {len(train)}"
        )
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)
    held_out = set(order[:LARGE_VALIDATION_SIZE])
    return {
        "train": [row for i, row in enumerate(train) if i not in held_out],  # original order kept
        "validation": [train[i] for i in order[:LARGE_VALIDATION_SIZE]],
        "test": list(original[task.test_split]),
    }


def subsample(rows: Rows, count: int, seed: int) -> Rows:
    """``count`` rows drawn without replacement with ``seed`` (original order kept); all if fewer.

    >>> subsample([{"i": i} for i in range(10)], 3, seed=0)
    [{'i': 4}, {'i': 7}, {'i': 9}]
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise DataError(f"max_train must be a positive whole number, got {count!r}")
    if count >= len(rows):
        if count > len(rows):
            warnings.warn(f"max_train={count} exceeds the {len(rows)} training rows; using all of them", stacklevel=3)
        return list(rows)
    # A stream separate from the split's, so max_train does not change which rows are validation.
    chosen = random.Random(f"subsample-{seed}").sample(range(len(rows)), count)
    return [rows[i] for i in sorted(chosen)]


# --- the shipped embedded tasks --------------------------------------------------------------


def load_embedded(task: str = "embedded-sst2") -> dict[str, Rows]:
    """The splits of a shipped embedded task (``runners/embedded/glue/<task>/*.jsonl``).

    >>> splits = load_embedded("embedded-mnli")
    >>> {name: len(rows) for name, rows in splits.items()}, sorted(splits["train"][0])
    ({'train': 2000, 'validation': 500, 'test': 500}, ['hypothesis', 'label', 'premise'])
    """
    return load_task_splits(get_task(task))


def embedded_tokenizer():
    """The embedded language's T5 tokenizer (runners.embedded.tokenizer), 100 sentinels included."""
    from runners.embedded.tokenizer import embedded_tokenizer as make

    try:
        return make()
    except ValueError as error:
        raise DataError(str(error)) from None
