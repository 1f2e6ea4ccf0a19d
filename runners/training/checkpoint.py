"""A resumable checkpoint folder, written so that a kill at any point leaves a complete one.

Both runners write the same shape; only the payload differs (an adapter for `runners.finetune`,
the whole model for `runners.pretrain`)::

    last/
      <payload>                 written by the runner's `save_payload(folder)`
      rng_state_rank0.pt        python / numpy / torch (CPU and CUDA) RNG states of process 0
      rng_state_rank1.pt        ... one per process
      training_state.pt         optimizer, scheduler, progress, ...: written LAST

Crash windows. The folder is written as ``last.partial/`` (``training_state.pt`` last, under a
temporary name: a folder holding it is complete), then swapped in: ``last/`` → ``last.previous/``,
``last.partial/`` → ``last/``, ``last.previous/`` removed. Killed anywhere in there, some complete
copy survives, and `CheckpointFolder.recover` (run before every resume) puts the newest one back.

>>> import tempfile, pathlib, torch
>>> folder = CheckpointFolder(pathlib.Path(tempfile.mkdtemp()) / "last", "t5-surgery-example/1")
>>> folder.write(lambda path: path.mkdir(), {"step": 3}, rank=0, is_main=True, barrier=lambda: None)
>>> folder.is_complete(), folder.read_state()["step"], sorted(p.name for p in folder.path.iterdir())
(True, 3, ['rng_state_rank0.pt', 'training_state.pt'])
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

STATE_FILE = "training_state.pt"


def rng_states() -> dict[str, Any]:
    """Every RNG a training step may draw from (dropout uses torch's CPU or CUDA generator)."""
    states: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def load_rng_states(folder: Path, rank: int) -> dict[str, Any] | None:
    """This process's saved RNG states, or None when the run had fewer processes."""
    path = folder / f"rng_state_rank{rank}.pt"
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # a damaged file: torch.load raises many kinds
        raise ValueError(f"{path} is damaged and cannot be read ({type(error).__name__}: {error})") from None


def sibling(folder: Path, suffix: str) -> Path:
    return folder.with_name(folder.name + suffix)


def swap_in(partial: Path, folder: Path) -> None:
    """Rename the fully written `partial` to `folder`, replacing what was there (`.previous` meanwhile)."""
    previous = sibling(folder, ".previous")
    shutil.rmtree(previous, ignore_errors=True)
    if folder.exists():
        folder.rename(previous)
    partial.rename(folder)
    shutil.rmtree(previous, ignore_errors=True)


def recover_folder(folder: Path, complete: Callable[[Path], bool], candidates: list[Path]) -> str | None:
    """Make `folder` the first complete of (`folder`, *candidates*); remove the rest. A note, or None."""
    note = None
    if not complete(folder):
        source = next((c for c in candidates if complete(c)), None)
        if source is not None:
            shutil.rmtree(folder, ignore_errors=True)
            source.rename(folder)
            note = f"recovered {folder} from {source.name}, left complete by an interrupted write"
    leftovers = [p for p in candidates if p.exists()]
    leftovers += [p for p in folder.parent.glob(f".{folder.name}.*") if p.is_dir() and p not in leftovers]
    for path in leftovers:  # incomplete writes, and copies superseded by `folder`
        shutil.rmtree(path, ignore_errors=True)
    if note is None and leftovers:
        note = f"removed {', '.join(sorted(p.name for p in leftovers))}, left by an interrupted write of {folder.name}/"
    return note


class CheckpointFolder:
    """One resumable checkpoint folder (`path`), its state file tagged with `format`.

    `payload_complete(folder)` says whether the runner's payload in a folder is whole (the state
    file alone says the write finished; an adapter checkpoint also needs its config file).
    """

    def __init__(self, path: str | Path, format: str, payload_complete: Callable[[Path], bool] = lambda folder: True):
        self.path = Path(path)
        self.format = format
        self.payload_complete = payload_complete

    def is_complete(self, folder: Path | None = None) -> bool:
        folder = self.path if folder is None else folder
        return (folder / STATE_FILE).is_file() and self.payload_complete(folder)

    def recover(self) -> str | None:
        """Put the folder back together after an interrupted write: itself if complete, else the
        fully written `.partial` (the newer), else `.previous`. A note for the user, or None."""
        return recover_folder(self.path, self.is_complete, [sibling(self.path, ".partial"), sibling(self.path, ".previous")])

    def write(self, save_payload: Callable[[Path], None], state: dict[str, Any], *, rank: int, is_main: bool,
              barrier: Callable[[], None]) -> None:
        """Write the checkpoint atomically; every process must call this.

        `save_payload(folder)` creates `folder` and writes the runner's tensors (main process only);
        `barrier()` waits for all processes (a shared file system is assumed across nodes).
        """
        partial = sibling(self.path, ".partial")
        barrier()
        if is_main:
            shutil.rmtree(partial, ignore_errors=True)
            save_payload(partial)
        barrier()
        torch.save(rng_states(), partial / f"rng_state_rank{rank}.pt")
        barrier()
        if is_main:
            temporary = partial / f".{STATE_FILE}.tmp"
            torch.save({"format": self.format, **state}, temporary)
            temporary.rename(partial / STATE_FILE)
            swap_in(partial, self.path)
        barrier()

    def read_state(self) -> dict[str, Any]:
        """The state file, checked to be this runner's format; ValueError naming the file otherwise."""
        path = self.path / STATE_FILE
        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as error:  # torch.load raises many kinds on a damaged file (EOFError, RuntimeError, ...)
            raise ValueError(f"{path} is damaged and cannot be read ({type(error).__name__}: {error}); "
                             f"delete {self.path} to restart this run from step 0") from None
        found = state.get("format") if isinstance(state, dict) else None
        if found != self.format:
            raise ValueError(f"{path}: format {found!r} is not {self.format!r}")
        return state

    def read_rng(self, rank: int) -> dict[str, Any] | None:
        return load_rng_states(self.path, rank)
