"""A run's training log: one JSON object per line, ``{"event": "train", "step": 40, "loss": 0.31, ...}``
for logging steps, ``{"event": "eval", "epoch": 3, "validation": {...}, ...}`` per evaluation (the
pretraining loop writes the same kind of log).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .atomic import write_text


class JsonlLog:
    """Append-only JSON-lines log; only the main process writes (`enabled`).

    `records` counts the lines; a checkpoint stores it, and a resumed run keeps exactly that many
    (`keep_first`), so what was logged after the checkpoint is dropped and never appears twice.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "log.jsonl"
    >>> log = JsonlLog(path); log.start()
    >>> log.write({"event": "train", "step": 1, "loss": 2.0}); log.write({"event": "train", "step": 2, "loss": 1.5})
    >>> log.records, log.keep_first(1), [r["step"] for r in read_jsonl(path)]
    (2, 1, [1])
    """

    def __init__(self, path: str | Path, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        self.records = 0
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.is_file():
                self.records = len(self._lines())

    def _lines(self) -> list[str]:
        # Complete lines only: a line cut short by a kill has no newline yet.
        text = self.path.read_text(encoding="utf-8", errors="replace") if self.path.is_file() else ""
        return [line + "\n" for line in text.split("\n")[:-1]]

    def start(self) -> None:
        """Begin an empty log (a run that starts from step 0)."""
        if self.enabled:
            write_text(self.path, "")
        self.records = 0

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with self.path.open("a", encoding="utf-8") as file:
                file.write(json.dumps(record, default=_plain) + "\n")
            self.records += 1

    def keep_first(self, count: int) -> int:
        """Keep the first `count` records (what a checkpoint saw); returns how many were dropped."""
        if not self.enabled:
            return 0
        lines = self._lines()
        write_text(self.path, "".join(lines[:count]))
        self.records = min(count, len(lines))
        return len(lines) - self.records

    def truncate_after_step(self, step: int) -> None:
        """Drop records of steps after `step` (for checkpoints written before `records` was saved)."""
        if self.enabled and self.path.is_file():
            kept = [line for line in self._lines() if json.loads(line).get("step", 0) <= step]
            write_text(self.path, "".join(kept))
            self.records = len(kept)


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    with Path(path).open(encoding="utf-8") as file:
        return [json.loads(line) for line in file if line.strip()]
