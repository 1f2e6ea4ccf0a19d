"""A runner's output folder: one process at a time, one overwrite policy, files written whole.

Every runner (`runners.finetune`, `runners.pretrain`, `runners.efficiency`) claims its
``--output-dir`` the same way, before any long work:

* :func:`check_output_path` — the path is a folder or can become one (not a file, not under a
  file, writable);
* :func:`folder_refusal` — the policy: a folder holding an earlier invocation (its
  ``arguments.json``) is continued with ``--resume`` or replaced with ``--overwrite``, never
  mixed with a new one; a folder of other files is never written into;
* :class:`OutputLock` — ``flock`` on ``OUT/.lock``, held while the runner writes there: the
  kernel drops it when the process ends however it ends (SIGKILL included), so there is never a
  stale lock, and a second process on the same folder is refused at once;
* :func:`claim_output_folder` — the three in order (checked, locked, checked again, cleared if
  replacing);
* :func:`check_output_file` — the same check for an output *file* (``--output``, ``--table``);
* :func:`write_whole` (and :func:`write_text` / :func:`write_json` on it) — a temporary file in
  the same folder, then one rename: a run killed at any moment leaves the old file or the new one,
  never a torn one.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp()) / "out"
>>> first = claim_output_folder(folder, "runners.efficiency", resumable=False)
>>> write_json(folder / ARGUMENTS_FILE, {"seed": 0})
>>> claim_output_folder(folder, "runners.efficiency", overwrite=True, resumable=False)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
runners.errors.UsageError: --output-dir ... is in use by another runners.efficiency process (pid ...
>>> first.release()
>>> claim_output_folder(folder, "runners.efficiency", resumable=False)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
runners.errors.UsageError: --output-dir ... holds an earlier invocation of runners.efficiency; replace it with --overwrite, or choose another folder
>>> claim_output_folder(folder, "runners.efficiency", overwrite=True, resumable=False).release()
>>> sorted(p.name for p in folder.iterdir())
['.lock']
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from runners.errors import UsageError

try:
    import fcntl
except ImportError:  # not POSIX: no locking (the folder checks still refuse mixing invocations)
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"
ARGUMENTS_FILE = "arguments.json"  # the options of the invocation that owns the folder


class OutputLock:
    """The lock of one output folder; `acquire` raises UsageError when another process holds it."""

    def __init__(self, folder: str | Path, runner: str = "runners.finetune", resumable: bool = True):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.runner = runner
        self.resumable = resumable
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
                then = f"continue with --resume {self.folder}" if self.resumable else "run again"
                raise UsageError(f"--output-dir {self.folder} is in use by another {self.runner} process ({holder}); "
                                 f"wait for it to finish or stop it, then {then}") from None
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


def check_output_path(folder: str | Path, option: str = "--output-dir",
                      wanted: str = "a folder (new or empty, or an earlier output folder)") -> None:
    """Refuse a path that cannot become the output folder: a file, a path under a file, no write access.
    `wanted` says what to give instead.

    >>> import tempfile, pathlib
    >>> file = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"; _ = file.write_text("x")
    >>> check_output_path(file)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    runners.errors.UsageError: --output-dir .../notes.txt is a file; give a folder (new or empty, or an earlier output folder)
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{option} {folder} is a file; give {wanted}")
    _check_nearest_existing(option, folder, (folder, *folder.parents), "a folder")


def check_output_file(path: str | Path, option: str, example: str) -> None:
    """Refuse an output file path that cannot be written: a folder, or one under a file or an unwritable
    folder. Missing folders are fine (they are made when the file is written).

    >>> import tempfile, pathlib
    >>> check_output_file(pathlib.Path(tempfile.mkdtemp()), "--output", "figure.png")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    runners.errors.UsageError: --output ... is a folder; give a file path, e.g. .../figure.png
    """
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file path, e.g. {path / example}")
    _check_nearest_existing(option, path, path.parents, "a path")


def _check_nearest_existing(option: str, path: Path, candidates: Iterable[Path], instead: str) -> None:
    """Refuse `path` when the first of `candidates` that exists is a file (nothing can be made under it)
    or a folder this process may not write."""
    existing = next((p for p in candidates if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise UsageError(f"{option} {path}: {existing} is a file, so no folder can be made there; give another path")
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: {existing} is not writable; give {instead} you can write to")


def folder_refusal(folder: Path, runner: str, *, overwrite: bool = False, resume: bool = False,
                   outputs: tuple[str, ...] = (), resumable: bool = True) -> tuple[str | None, bool]:
    """(why `folder` cannot take this invocation, or None; whether to clear it first).

    A resumed invocation continues its own folder. A folder holding another invocation's
    ``arguments.json`` (or one of the runner's `outputs`, for folders written before the runner
    saved its arguments) is replaced only with `overwrite`. Files of anything else are never
    written over (hidden entries — the lock, a temporary file, ``.DS_Store`` — do not count).
    """
    if resume:
        return None, False
    if any((folder / name).exists() for name in (ARGUMENTS_FILE, *outputs)):
        if not overwrite:
            how = f"continue it with --resume {folder}, replace it with --overwrite" if resumable \
                else "replace it with --overwrite"
            return f"--output-dir {folder} holds an earlier invocation of {runner}; {how}, or choose another folder", False
        return None, True
    others = sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        return (f"--output-dir {folder} already holds files ({shown}) but no {ARGUMENTS_FILE}: it is not an output "
                f"folder of {runner} (or one whose start was interrupted); choose an empty or new folder"), False
    return None, False


def clear_folder(folder: Path) -> None:
    """Remove everything in `folder` but the lock (an earlier invocation being replaced by --overwrite)."""
    for entry in folder.iterdir():
        if entry.name != LOCK_FILE:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def claim_output_folder(folder: str | Path, runner: str, *, overwrite: bool = False, resume: bool = False,
                        outputs: tuple[str, ...] = (), resumable: bool = True) -> OutputLock:
    """Check, lock and (with `overwrite`) clear `folder` for one invocation; the caller releases the lock.

    The policy is checked before locking (a refused folder gets no lock file) and again once
    locked (another process may have started meanwhile). Raises UsageError with one line.
    """
    folder = Path(folder)
    check_output_path(folder)
    verdict, _ = folder_refusal(folder, runner, overwrite=overwrite, resume=resume, outputs=outputs,
                                resumable=resumable)
    if verdict is not None:
        raise UsageError(verdict)
    lock = OutputLock(folder, runner, resumable)
    try:
        lock.acquire()
    except OSError as error:
        raise UsageError(f"--output-dir {folder}: cannot write there ({error.strerror or error})") from None
    try:
        verdict, replace = folder_refusal(folder, runner, overwrite=overwrite, resume=resume, outputs=outputs,
                                resumable=resumable)
        if verdict is not None:
            raise UsageError(verdict)
        if replace:
            clear_folder(folder)
    except OSError as error:
        lock.release()
        raise UsageError(f"--output-dir {folder}: cannot write there ({error.strerror or error})") from None
    except UsageError:
        lock.release()
        raise
    return lock


def write_whole(path: str | Path, write: Callable[[Path], object]) -> None:
    """Write `path` whole or not at all: `write` fills a temporary file in the same folder (made if
    missing), which is flushed to disk and then renamed over `path` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(temporary)
        with temporary.open("rb") as file:
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    """Write `text` to `path` whole or not at all (see :func:`write_whole`)."""
    write_whole(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, value: Any) -> None:
    """`value` as indented JSON, written whole or not at all.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "result.json"
    >>> write_json(path, {"accuracy": 87.5}); path.read_text()
    '{\\n  "accuracy": 87.5\\n}\\n'
    """
    write_text(path, json.dumps(value, indent=2, default=str) + "\n")
