"""Resumable checkpoints: the adapter plus everything else a run needs to continue exactly.

A resumable checkpoint is a folder::

    last/
      t5_surgery_adapter.safetensors  the trained tensors      (surgery.save_adapter)
      t5_surgery_adapter.json         recipe + base fingerprint
      README.md                       model card
      training_state.pt           optimizer, scheduler, grad scaler, Progress, base checksum
      rng_state_rank0.pt          python / numpy / torch (CPU and CUDA) RNG states of process 0
      rng_state_rank1.pt          ... one per process

The data order needs no state: it is a pure function of (seed, epoch) (`runners.finetune.batches`),
so `Progress.epoch` and `Progress.step_in_epoch` say where to continue. A folder is written under
a temporary name and renamed into place, so an interruption while saving leaves the previous
checkpoint intact.

>>> progress = Progress(epoch=2, step_in_epoch=5, global_step=45)
>>> Progress.from_dict(progress.to_dict()) == progress
True
"""

from __future__ import annotations

import dataclasses
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import surgery

FORMAT = "t5-surgery-training-state/1"
STATE_FILE = "training_state.pt"


@dataclass
class Progress:
    """Where training stands: the next batch to train, and the best validation result so far."""

    epoch: int = 0                 # the epoch in progress (0-based)
    step_in_epoch: int = 0         # optimizer steps done in that epoch = index of its next batch
    global_step: int = 0           # optimizer steps done in the whole run
    best_score: float | None = None
    best_epoch: int | None = None  # 1-based, as printed
    best_validation: dict[str, float] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)  # one record per evaluated epoch
    epoch_loss_sum: float = 0.0    # summed token loss of the epoch so far (for its mean train loss)
    epoch_tokens: int = 0
    window_loss_sum: float = 0.0   # the same since the last JSON-lines record
    window_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Progress:
        return cls(**values)


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


def frozen_checksum(model: nn.Module) -> float:
    """A number that changes when the frozen base weights change (a resume needs the same base)."""
    with torch.no_grad():
        total = torch.zeros((), dtype=torch.float64)
        for index, parameter in enumerate(p for p in model.parameters() if not p.requires_grad):
            total += (index + 1) * parameter.detach().double().abs().sum().cpu()
    return float(total)


def resume_folder(path: str | Path) -> Path:
    """The checkpoint folder for `path`: the folder itself, or its `last/` subfolder."""
    path = Path(path)
    for candidate in (path, path / "last"):
        if (candidate / STATE_FILE).is_file():
            return candidate
    raise FileNotFoundError(f"{path} holds no resumable checkpoint (looked for {STATE_FILE} in it and in {path / 'last'})")


def replace_folder(folder: Path, write) -> None:
    """Run `write(partial_folder)`, then swap the result in for `folder` (never half-written)."""
    partial = folder.with_name(folder.name + ".partial")
    previous = folder.with_name(folder.name + ".previous")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    write(partial)
    shutil.rmtree(previous, ignore_errors=True)
    if folder.exists():
        folder.rename(previous)
    partial.rename(folder)
    shutil.rmtree(previous, ignore_errors=True)


def save_adapter_atomically(model: nn.Module, folder: Path) -> None:
    """surgery.save_adapter into `folder`, replacing what was there only once fully written."""
    replace_folder(folder, lambda partial: surgery.save_adapter(model, partial))


def save_checkpoint(folder: Path, model: nn.Module, training_state: dict[str, Any], rank: int, is_main: bool,
                    barrier) -> None:
    """Write a resumable checkpoint to `folder` atomically; every process must call this.

    `model` is the unwrapped model; `barrier()` waits for all processes (a shared file system
    is assumed when training on several nodes).
    """
    partial = folder.with_name(folder.name + ".partial")
    if is_main:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    barrier()
    torch.save(rng_states(), partial / f"rng_state_rank{rank}.pt")
    if is_main:
        surgery.save_adapter(model, partial)
        torch.save({"format": FORMAT, **training_state}, partial / STATE_FILE)
    barrier()
    if is_main:
        previous = folder.with_name(folder.name + ".previous")
        shutil.rmtree(previous, ignore_errors=True)
        if folder.exists():
            folder.rename(previous)
        partial.rename(folder)
        shutil.rmtree(previous, ignore_errors=True)
    barrier()


def load_training_state(folder: Path) -> dict[str, Any]:
    """The training_state.pt of a checkpoint folder (optimizer, scheduler, scaler, progress, ...)."""
    state = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=False)
    if state.get("format") != FORMAT:
        raise ValueError(f"{folder / STATE_FILE}: format {state.get('format')!r} is not {FORMAT!r}")
    return state


def load_rng_states(folder: Path, rank: int) -> dict[str, Any] | None:
    """This process's saved RNG states, or None when the run had fewer processes."""
    path = folder / f"rng_state_rank{rank}.pt"
    return torch.load(path, map_location="cpu", weights_only=False) if path.is_file() else None
