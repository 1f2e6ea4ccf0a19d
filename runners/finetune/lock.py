"""One process per output folder: an exclusive lock held while an invocation trains into it.

The lock is `flock` on ``OUT/.lock``: the kernel releases it when the process ends, however it
ends (SIGKILL included), so a crashed run never leaves a stale lock behind, and a second
process — a `--resume` of a run that is still training, or the same command started twice —
is refused at once with exit 2 instead of training into the same files.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> first = OutputLock(folder); first.acquire()
>>> OutputLock(folder).acquire()  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
runners.finetune.errors.UsageError: --output-dir ... is in use by another runners.finetune process (pid ...
>>> first.release(); OutputLock(folder).acquire()
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import IO

from .errors import UsageError

try:
    import fcntl
except ImportError:  # not POSIX: no locking (the folder checks still refuse mixing invocations)
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"


class OutputLock:
    """The lock of one output folder; `acquire` raises UsageError when another process holds it."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        file = self.path.open("a+", encoding="utf-8")
        if fcntl is not None:
            try:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                file.seek(0)
                holder = file.read().strip() or "pid unknown"
                file.close()
                raise UsageError(f"--output-dir {self.folder} is in use by another runners.finetune process ({holder}); "
                                 f"wait for it to finish or stop it, then continue with --resume {self.folder}") from None
        file.seek(0)
        file.truncate()
        file.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        file.flush()
        self._file = file

    def release(self) -> None:
        if self._file is not None:
            if fcntl is not None:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
