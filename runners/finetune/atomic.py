"""Files written whole or not at all: a temporary file in the same folder, then one rename.

A run killed at any moment (SIGKILL included) leaves either the old file or the new one, never
a torn one, so `--resume` can trust what it finds.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "result.json"
>>> write_json(path, {"accuracy": 87.5}); path.read_text()
'{\\n  "accuracy": 87.5\\n}\\n'
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any


def write_text(path: str | Path, text: str) -> None:
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_json(path: str | Path, value: Any) -> None:
    write_text(path, json.dumps(value, indent=2, default=str) + "\n")
