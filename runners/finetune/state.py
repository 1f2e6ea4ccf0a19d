"""Resumable checkpoints: the adapter plus everything else a run needs to continue exactly.

A resumable checkpoint is a folder::

    last/
      t5_surgery_adapter.safetensors  the trained tensors      (surgery.save_adapter)
      t5_surgery_adapter.json         recipe + base fingerprint
      README.md                       model card
                                  (a library baseline's run, --recipe peft-lora: PEFT's adapter_model.safetensors
                                  and adapter_config.json instead; `save_trained`, runners.finetune.library_baselines)
      training_state.pt           optimizer, scheduler, grad scaler, Progress, base checksum
      rng_state_rank0.pt          python / numpy / torch (CPU and CUDA) RNG states of process 0
      rng_state_rank1.pt          ... one per process

The data order needs no state: it is a pure function of (seed, epoch) (`runners.finetune.batches`),
so `Progress.epoch` and `Progress.step_in_epoch` say where to continue; `Progress.log_records`
says how much of ``log.jsonl`` the checkpoint has seen, so a resumed run drops what was logged
after it and never logs a step twice.

The folder is written by the training core's `runners.training.CheckpointFolder` (the one the
pretraining runner uses too): a kill anywhere leaves some complete copy, and `recover_checkpoint`
(run before every resume) puts the newest one back as ``last/`` and says so.

>>> progress = Progress(epoch=2, step_in_epoch=5, global_step=45)
>>> Progress.from_dict(progress.to_dict()) == progress
True
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

import surgery
from runners.training.checkpoint import (STATE_FILE, CheckpointFolder, load_rng_states, recover_folder,
                                         restore_rng_states, rng_states, sibling, swap_in)
from surgery.checkpoint import CONFIG_FILE

from . import library_baselines

FORMAT = "t5-surgery-training-state/1"
__all__ = ["FORMAT", "STATE_FILE", "Progress", "checkpoint_folder", "frozen_checksum", "holds_trained", "is_complete",
           "load_rng_states", "load_trained", "load_training_state", "recover_adapter", "recover_checkpoint", "restore_rng_states", "resume_folder",
           "rng_states", "save_adapter_atomically", "save_checkpoint", "save_trained", "sibling",
           "swap_in"]


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
    log_records: int | None = None  # records in log.jsonl when this was saved (None: an older checkpoint)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Progress:
        return cls(**values)


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


def save_trained(model: nn.Module, folder: Path) -> None:
    """The trained tensors of `model` into `folder`: the engine's adapter (surgery.save_adapter), or a
    library baseline's own files (`runners.finetune.library_baselines`: PEFT's)."""
    if library_baselines.uses_peft(model):
        library_baselines.save_trained(model, folder)
    else:
        surgery.save_adapter(model, folder)


def load_trained(model: nn.Module, folder: Path) -> None:
    """What `save_trained` wrote, back into `model` (surgery.CheckpointError where it does not fit)."""
    if library_baselines.uses_peft(model):
        library_baselines.load_trained(model, folder)
    else:
        surgery.load_adapter(model, folder)


def holds_trained(folder: Path) -> bool:
    """Whether `folder` holds a complete `save_trained` (its record, written last, is there)."""
    return (folder / CONFIG_FILE).is_file() or library_baselines.holds_trained(folder)


def checkpoint_folder(folder: Path) -> CheckpointFolder:
    """The resumable checkpoint `folder` of a fine-tuning run: an adapter plus the training state."""
    return CheckpointFolder(folder, FORMAT, payload_complete=holds_trained)


def is_complete(folder: Path) -> bool:
    """A checkpoint folder whose last file (training_state.pt) was written."""
    return checkpoint_folder(folder).is_complete()


def recover_checkpoint(folder: Path) -> str | None:
    """Put the resumable checkpoint `folder` back together after an interrupted write.

    Preference: `folder` if complete; else `.partial` (written in full, not yet renamed: the newer);
    else `.previous` (the one being replaced).
    """
    return checkpoint_folder(folder).recover()


def recover_adapter(folder: Path) -> str | None:
    """The same for an adapter folder (`best/`) written by surgery.save_adapter (staging, then a swap)."""
    staged = sorted(folder.parent.glob(f".{folder.name}.saving-*")) + sorted(folder.parent.glob(f".{folder.name}.replaced-*"))
    return recover_folder(folder, holds_trained, staged)


def save_adapter_atomically(model: nn.Module, folder: Path, task_record: dict[str, Any] | None = None) -> None:
    """`save_trained` into `folder`, as a new folder swapped in (never half-written).

    With `task_record` (runners.tasks.task_record) the folder also gets ``task.json`` and its model
    card says how to predict with it (``python -m runners.predict``). These two are written after
    the swap; were a run killed in between, `runners.predict` reads the run folder's ``task.json``.
    """
    if library_baselines.uses_peft(model):
        library_baselines.save_trained_atomically(model, folder)
        if task_record is not None:  # PEFT's files have no card of ours; task.json says how the run read its data
            from .task_data import write_task_record

            write_task_record(folder, task_record)
        return
    surgery.save_adapter(model, folder)  # stages a new folder and swaps it in
    if task_record is not None:
        from surgery.model_card import CARD_FILE, render_model_card

        from .atomic import write_text
        from .task_data import write_task_record

        write_task_record(folder, task_record)
        record = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        write_text(folder / CARD_FILE, render_model_card(record, str(folder), task=task_record))


def save_checkpoint(folder: Path, model: nn.Module, training_state: dict[str, Any], rank: int, is_main: bool,
                    barrier) -> None:
    """Write a resumable checkpoint to `folder` atomically; every process must call this.

    `model` is the unwrapped model; `barrier()` waits for all processes (a shared file system
    is assumed when training on several nodes).
    """
    checkpoint_folder(folder).write(lambda partial: save_trained(model, partial), training_state, rank=rank,
                                    is_main=is_main, barrier=barrier)


def load_training_state(folder: Path) -> dict[str, Any]:
    """The training_state.pt of a checkpoint folder (optimizer, scheduler, scaler, progress, ...)."""
    return checkpoint_folder(folder).read_state()


def resume_point(run_dir: Path, accelerator, say: Callable[[str], None]) -> Path | None:
    """The run's complete checkpoint to resume from (an interrupted save recovered first), or None: from step 0."""
    if accelerator.is_main_process:
        for note in (recover_checkpoint(run_dir / "last"), recover_adapter(run_dir / "best")):
            if note:
                say(f"note: {note}")
    accelerator.wait_for_everyone()
    if is_complete(run_dir / "last"):
        return run_dir / "last"
    if (run_dir / "log.jsonl").is_file():
        say(f"note: {run_dir} has no complete checkpoint (stopped before the first one was written); "
            "this run starts again from step 0")
    return None
