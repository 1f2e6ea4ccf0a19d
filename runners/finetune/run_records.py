"""Finding the records runs left under folders (``result.json``, ``diverged.json``), in an order in
which a sweep's settings come as its grid does, and refusing one run found twice.

>>> sorted(["lr=3e-4", "lr=3e-5", "lr=3e-2", "seed-42", "seed-9"], key=numbers_as_numbers)
['lr=3e-5', 'lr=3e-4', 'lr=3e-2', 'seed-9', 'seed-42']
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def check_run_folders(folders: Iterable[Path], what: str) -> None:
    """Refuse a path among `folders` that is not a folder (UsageError naming it); `what` says what to give.

    >>> check_run_folders([Path("/no/such/place")], "output folders of runners.finetune")
    Traceback (most recent call last):
    ...
    runners.errors.UsageError: /no/such/place: no such folder; give output folders of runners.finetune
    """
    from runners.errors import UsageError

    for folder in folders:
        if not folder.is_dir():
            raise UsageError(f"{folder}: {'not a folder' if folder.exists() else 'no such folder'}; give {what}")


def found(folders: Iterable[str | Path], record: type[Any]) -> list[tuple[Path, Any]]:
    """(path, record) of every `record.FILE` below `folders`, loaded with `record.load` (a RunRecord of
    `runners.finetune.results`: RunResult for result.json, DivergedRun for diverged.json), sorted by
    :func:`numbers_as_numbers` of the path."""
    paths = sorted({path for folder in folders for path in Path(folder).rglob(record.FILE)},
                   key=lambda path: numbers_as_numbers(str(path)))
    return [(path, record.load(path)) for path in paths]


def one_per_run(paths_and_records: Iterable[tuple[Path, Any]]) -> None:
    """Refuse two records of one run (task, recipe, setting, seed), e.g. from two copies of a folder:
    averaged as if they were two seeds they would make a spread out of one seed (SystemExit(2), one line)."""
    seen: dict[tuple, Path] = {}
    for path, record in paths_and_records:
        key = (record.task, record.recipe, record.setting, record.seed)
        if key in seen:
            print(f"error: run {record.task} · {record.label} · seed {record.seed} appears twice: {seen[key]} and "
                  f"{path}; pass only one of them (two copies of one seed are not two seeds)", file=sys.stderr)
            raise SystemExit(2)
        seen[key] = path


_NUMBER = re.compile(r"(\d+(?:\.\d+)?(?:e[-+]?\d+)?)")


def numbers_as_numbers(text: str) -> tuple:
    """A sort key: `text` cut into its other characters and its numbers (3e-5, 0.5, 42), numbers as floats."""
    parts = _NUMBER.split(text)  # even places: other characters; odd places: numbers
    return tuple(float(part) if index % 2 else part for index, part in enumerate(parts))
