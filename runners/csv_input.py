"""An input CSV of a runner (``--scores``, ``--efficiency``), checked before any work.

:func:`read_checked_csv` refuses, in one line naming the option, the file (and line where there is
one) and what to give instead: a missing file or a folder, a file that is not text (not UTF-8, or
holding NUL bytes), a row with another number of fields than the header (a file cut short), and
whatever the loader itself refuses (its ``ValueError`` messages start with the path).

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "cut.csv").write_text("recipe,score\\ncompacter++,81.0\\nadapter")
>>> read_checked_csv("--scores", folder / "cut.csv", lambda path: {}, "a CSV with a header 'recipe,score'")
Traceback (most recent call last):
...
runners.errors.UsageError: --scores .../cut.csv, line 3: 1 field(s) where the header has 2 (a truncated file?); give a CSV with a header 'recipe,score'
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from runners.errors import UsageError

Loaded = TypeVar("Loaded")


def _check_rows(option: str, path: Path, text: str, valid: str) -> None:
    """Every row has the header's fields: a file cut short ends in a row with fewer."""
    rows = list(csv.reader(text.splitlines()))
    width = len(rows[0]) if rows else 0
    for line, row in enumerate(rows[1:], start=2):
        if row and len(row) != width:
            raise UsageError(f"{option} {path}, line {line}: {len(row)} field(s) where the header has {width} "
                             f"(a truncated file?); give {valid}")


def read_checked_csv(option: str, path: str | Path, load: Callable[..., Loaded], valid: str, *rest: Any) -> Loaded:
    """`load(path, *rest)` for the CSV file `path` given as `option`, or UsageError saying why not and `valid`."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{option} {path}: {'is a folder' if path.is_dir() else 'no such file'}; give {valid}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{option} {path}: not a text file (not UTF-8); give {valid}") from None
    except OSError as error:
        raise UsageError(f"{option} {path}: cannot be read ({error.strerror or error})") from None
    if "\0" in text:
        raise UsageError(f"{option} {path}: not a text file (holds NUL bytes); give {valid}")
    _check_rows(option, path, text, valid)
    try:
        return load(path, *rest)
    except (ValueError, csv.Error) as error:
        raise UsageError(f"{option} {' '.join(str(error).split())}") from None
