"""Continue a run from its resumable checkpoint: adapter, optimizer, schedule, RNG, position, log.

    restore(folder, ...)
      ├─ training_state.pt      read and checked: same frozen base, same number of steps
      ├─ load_trained           the trained tensors (surgery.load_adapter, verified first; or PEFT's)
      ├─ optimizer, scheduler, grad scaler, Progress
      ├─ RNG states of this process
      └─ log.jsonl              cut back to what the checkpoint had seen (no step logged twice)

Every problem with the checkpoint is a `TrainingSetupError` naming the file (exit 2).
"""

from __future__ import annotations

from pathlib import Path
import torch
from tqdm.auto import tqdm

from .errors import TrainingSetupError
from .jsonl_log import JsonlLog
from .state import Progress, load_rng_states, load_trained, load_training_state, restore_rng_states


def restore(folder: Path, model: torch.nn.Module, optimizer, scheduler, scaler, *, rank: int, seed: int,
            checksum: float, total_steps: int, log: JsonlLog) -> Progress:
    """Load the checkpoint in `folder` into the run's objects; returns where training stands."""
    try:
        state = load_training_state(folder)
        saved_checksum, saved_steps = state["frozen_checksum"], state["total_steps"]
        progress = Progress.from_dict(state["progress"])
    except (ValueError, KeyError, TypeError) as error:
        raise TrainingSetupError(f"{folder}: the resumable checkpoint cannot be used ({error})") from None
    if abs(saved_checksum - checksum) > 1e-6 * max(1.0, abs(checksum)):
        raise TrainingSetupError(f"{folder}: the frozen base weights differ from those of the interrupted run "
                                 "(another --model, --init-config or --seed?); a resumed run must start from the same base")
    if saved_steps != total_steps:
        raise TrainingSetupError(f"{folder}: the interrupted run planned {saved_steps} steps, this one "
                                 f"{total_steps} (another --epochs, --batch-size or training set?)")
    load_trained(model, folder)
    try:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler") is not None:
            scaler.load_state_dict(state["scaler"])
        rng = load_rng_states(folder, rank)
    except (ValueError, KeyError, TypeError, RuntimeError) as error:
        raise TrainingSetupError(f"{folder}: the resumable checkpoint cannot be used ({error})") from None
    if rng is None:
        tqdm.write(f"note: {folder} was written by fewer processes; process {rank} starts a fresh random stream")
        torch.manual_seed(seed + rank)
    else:
        restore_rng_states(rng)
    if progress.log_records is not None:
        log.keep_first(progress.log_records)
    else:  # written before checkpoints counted the log's records
        log.truncate_after_step(progress.global_step)
    return progress
