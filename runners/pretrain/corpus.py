"""Where pretraining text comes from: local files, or a `datasets` corpus for users with the Hub.

Local files hold one document per line:

* ``.txt`` / ``.txt.gz`` — each non-blank line is a document;
* ``.jsonl`` / ``.jsonl.gz`` — each line a JSON object whose ``text`` field (or ``--text-column``)
  is a document.

A folder stands for every such file in it, in name order. Everything that can go wrong raises
:class:`CorpusError` naming the file (and line): a missing or unreadable file, text that is not
UTF-8, a JSON line without the text field, a corpus with no document at all.

Supervised examples mixed into pretraining (T5 v1.0 style) are JSON lines ``{"source": …,
"target": …}`` read by :func:`read_supervised`.

>>> import gzip, tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "a.txt").write_text("first document .\\n\\nsecond document .\\n")
>>> with gzip.open(folder / "b.jsonl.gz", "wt") as file:
...     _ = file.write('{"text": "third document ."}\\n')
>>> read_documents([folder])
['first document .', 'second document .', 'third document .']
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from runners.hub import prepare_hub

TEXT_SUFFIXES = (".txt", ".txt.gz")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")


class CorpusError(ValueError):
    """The corpus cannot be read; the message names the file and what is wrong."""


def _suffix(path: Path) -> str | None:
    name = path.name.lower()
    return next((s for s in TEXT_SUFFIXES + JSONL_SUFFIXES if name.endswith(s)), None)


def corpus_files(paths: Sequence[str | Path]) -> list[Path]:
    """The files `paths` name (a folder: its corpus files in name order)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and _suffix(p))
            if not found:
                raise CorpusError(f"{path}: a folder with no corpus file (expected {', '.join(TEXT_SUFFIXES + JSONL_SUFFIXES)})")
            files += found
        elif path.is_file():
            if _suffix(path) is None:
                raise CorpusError(f"{path}: not a corpus file; expected one of {', '.join(TEXT_SUFFIXES + JSONL_SUFFIXES)}")
            files.append(path)
        else:
            raise CorpusError(f"{path}: no such file or folder")
    return files


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as file:
            yield from enumerate(file, start=1)
    except UnicodeDecodeError as error:
        raise CorpusError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except (OSError, EOFError) as error:  # unreadable, a truncated or corrupt .gz
        raise CorpusError(f"{path}: cannot be read ({error})") from None


def _documents_of(path: Path, text_column: str) -> Iterator[str]:
    is_jsonl = _suffix(path) in JSONL_SUFFIXES
    for number, line in _lines(path):
        line = line.strip()
        if not line:
            continue
        if not is_jsonl:
            yield line
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise CorpusError(f"{path}, line {number}: not JSON ({error.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get(text_column), str):
            raise CorpusError(f"{path}, line {number}: expected an object with a text field {text_column!r}")
        if record[text_column].strip():
            yield record[text_column].strip()


def read_documents(paths: Sequence[str | Path], text_column: str = "text") -> list[str]:
    """Every document of the local corpus files `paths`; CorpusError if there is none."""
    files = corpus_files(paths)
    documents = [document for path in files for document in _documents_of(path, text_column)]
    if not documents:
        raise CorpusError(f"{', '.join(map(str, files))}: the corpus holds no document (only blank lines)")
    return documents


def load_hub_documents(name: str, split: str = "train", text_column: str = "text",
                       limit: int | None = None) -> list[str]:
    """Documents of a `datasets` corpus (``NAME`` or ``NAME:CONFIG``), e.g. ``allenai/c4:en``."""
    from datasets import load_dataset

    path, _, config = name.partition(":")
    prepare_hub(path)  # an unreachable Hub: offline at once, with one note
    try:
        dataset = load_dataset(path, config or None, split=split, streaming=limit is not None)
    except Exception as error:  # the Hub unreachable, an unknown name: one clear message
        raise CorpusError(f"--dataset {name!r}: could not load split {split!r} ({type(error).__name__}: {error})") from None
    documents: list[str] = []
    for record in dataset:
        if text_column not in record:
            raise CorpusError(f"--dataset {name!r}: no column {text_column!r}; columns: {', '.join(record)}")
        if str(record[text_column]).strip():
            documents.append(str(record[text_column]).strip())
        if limit is not None and len(documents) >= limit:
            break
    if not documents:
        raise CorpusError(f"--dataset {name!r}: split {split!r} holds no document")
    return documents


def read_supervised(paths: Iterable[str | Path]) -> list[tuple[str, str]]:
    """(source, target) pairs from JSON lines ``{"source": …, "target": …}`` (``.jsonl[.gz]``)."""
    pairs: list[tuple[str, str]] = []
    for path in corpus_files(list(paths)):
        for number, line in _lines(path):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise CorpusError(f"{path}, line {number}: not JSON ({error.msg})") from None
            if not (isinstance(record, dict) and isinstance(record.get("source"), str)
                    and isinstance(record.get("target"), str)):
                raise CorpusError(f"{path}, line {number}: expected an object with string fields 'source' and 'target'")
            pairs.append((record["source"], record["target"]))
    if not pairs:
        raise CorpusError(f"{', '.join(map(str, paths))}: no supervised example")
    return pairs
