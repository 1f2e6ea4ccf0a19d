"""The pretraining loop: the finetune runner's machinery on span corruption (+ supervised pairs).

    pretrain(model, tokenizer, data, config)
      ├─ AdamW + linear warm-up/decay, clip 1.0          runners.finetune.training (the same code)
      ├─ accelerator.prepare(model, optimizer)           DDP under torchrun / accelerate launch
      ├─ resume from last/: weights, optimizer, scheduler, RNG, step
      └─ per step
           ├─ span-corruption batch of the step (+ supervised batch)   runners.pretrain.data
           │    loss: summed token losses / tokens of the GLOBAL batch, so N processes = 1 process
           ├─ every eval_every steps: held-out span-corruption loss (log.jsonl, progress bar)
           └─ every save_every steps, at the end, on SIGINT/SIGTERM: last/ (resumable)
      then: model/ — save_pretrained weights + tokenizer, loadable with from_pretrained

A resumable checkpoint ``last/`` holds ``model.safetensors`` + ``config.json`` (save_pretrained),
``training_state.pt`` (optimizer, scheduler, grad scaler, step, eval history) and one RNG file per
process; it is written under a temporary name and renamed into place.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from runners.finetune.batches import IGNORE_INDEX
from runners.finetune.results import JsonlLog
from runners.finetune.state import load_rng_states, recover_folder, restore_rng_states, rng_states, sibling, swap_in
from runners.finetune.training import StopSignal, make_accelerator, make_optimizer, make_scheduler

from .data import PretrainData

STATE_FILE = "training_state.pt"
FORMAT = "t5-surgery-pretrain-state/1"


@dataclass
class PretrainConfig:
    """Every setting of one pretraining run."""

    output_dir: str | Path
    steps: int = 4000
    batch_size: int = 64                 # span-corruption chunks per step, all processes together
    supervised_batch_size: int = 0       # supervised pairs per step (0: span corruption only)
    learning_rate: float = 2e-3
    warmup_steps: int = 200
    max_grad_norm: float = 1.0
    eval_every: int = 500
    save_every: int = 500
    log_every: int = 10
    seed: int = 0
    precision: str = "no"                # no | bf16 (CPU autocast too) | fp16 | auto
    cpu: bool = False
    resume: bool = False
    stop_after_steps: int | None = None
    progress_bars: bool = True
    dropout_rate_saved: float | None = 0.1  # written into the saved config (pretraining may run without dropout)


@dataclass
class PretrainOutcome:
    completed: bool
    step: int
    eval_history: list[dict[str, Any]] = field(default_factory=list)
    model_dir: Path | None = None
    stop_reason: str | None = None
    seconds: float = 0.0


def _loss_sum(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).logits
    labels = batch["labels"]
    loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                           ignore_index=IGNORE_INDEX, reduction="sum")
    return loss, int((labels != IGNORE_INDEX).sum())


def held_out_loss(model: nn.Module, data: PretrainData, seed: int, device, autocast, batch_size: int = 64) -> float:
    """Mean token loss of span corruption on the held-out chunks (fixed masks)."""
    was_training = model.training
    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for batch in data.eval_batches(batch_size, seed):
            with autocast():
                loss, count = _loss_sum(model, {k: v.to(device) for k, v in batch.items()})
            total, tokens = total + float(loss), tokens + count
    model.train(was_training)
    return total / max(1, tokens)


def save_model(model: nn.Module, tokenizer, folder: Path, dropout_rate: float | None) -> None:
    """save_pretrained weights + tokenizer, with the fine-tuning dropout rate in the config."""
    previous = model.config.dropout_rate
    if dropout_rate is not None:
        model.config.dropout_rate = dropout_rate
    try:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    finally:
        model.config.dropout_rate = previous


def pretrain(model: nn.Module, tokenizer, data: PretrainData, config: PretrainConfig, accelerator=None) -> PretrainOutcome:
    """Pretrain `model` on `data` as `config` says; returns how it ended (see the module docstring)."""
    started = time.perf_counter()
    accelerator = accelerator or make_accelerator(config.precision, config.cpu)
    world, rank, is_main = accelerator.num_processes, accelerator.process_index, accelerator.is_main_process
    output = Path(config.output_dir)
    last_dir, model_dir = output / "last", output / "model"
    log = JsonlLog(output / "log.jsonl", enabled=is_main)
    if config.batch_size < world:
        raise ValueError(f"--batch-size {config.batch_size} is the global batch; it must be at least the {world} processes")

    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], config.learning_rate)
    scheduler = make_scheduler(optimizer, config.warmup_steps, config.steps)
    step, history = 0, []
    if config.resume and is_main:
        note = recover_folder(last_dir, lambda folder: (folder / STATE_FILE).is_file(),
                              [sibling(last_dir, ".partial"), sibling(last_dir, ".previous")])
        if note:
            tqdm.write(f"note: {note}")
    accelerator.wait_for_everyone()
    if config.resume and (last_dir / STATE_FILE).is_file():
        from safetensors.torch import load_model

        load_model(model, str(last_dir / "model.safetensors"), strict=False)
        state = torch.load(last_dir / STATE_FILE, map_location="cpu", weights_only=False)
        if state.get("format") != FORMAT or state.get("steps") != config.steps:
            raise ValueError(f"{last_dir}: not a checkpoint of this run (format {state.get('format')!r}, "
                             f"planned steps {state.get('steps')} vs {config.steps})")
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, history = state["step"], state["history"]
        rng = load_rng_states(last_dir, rank)
        if rng is not None:
            restore_rng_states(rng)
        log.truncate_after_step(step)
    else:
        torch.manual_seed(config.seed + rank)
    wrapped, optimizer = accelerator.prepare(model, optimizer)
    unwrapped = accelerator.unwrap_model(wrapped)
    device = accelerator.device

    def say(message: str) -> None:
        if is_main:
            tqdm.write(message)

    def checkpoint() -> None:
        """last/ written as last.partial/ (every process its RNG file), then renamed into place."""
        state = {"format": FORMAT, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                 "step": step, "steps": config.steps, "history": history, "world_size": world}
        partial = sibling(last_dir, ".partial")
        accelerator.wait_for_everyone()
        if is_main:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
        accelerator.wait_for_everyone()
        torch.save(rng_states(), partial / f"rng_state_rank{rank}.pt")
        if is_main:
            save_model(unwrapped, tokenizer, partial, dropout_rate=None)
            # Written last, under a temporary name: a folder holding training_state.pt is complete.
            torch.save(state, partial / f".{STATE_FILE}.tmp")
            (partial / f".{STATE_FILE}.tmp").rename(partial / STATE_FILE)
        accelerator.wait_for_everyone()
        if is_main:
            swap_in(partial, last_dir)
        accelerator.wait_for_everyone()

    def evaluate() -> float:
        loss = held_out_loss(unwrapped, data, config.seed, device, accelerator.autocast)
        history.append({"step": step, "held_out_loss": loss})
        log.write({"event": "eval", "step": step, "held_out_loss": loss,
                   "elapsed_seconds": round(time.perf_counter() - started, 1)})
        return loss

    if step == 0 and not history:
        say(f"step 0: held-out span-corruption loss {evaluate():.4f}")
    bar = tqdm(total=config.steps, initial=step, desc="pretraining", dynamic_ncols=True,
               disable=None if is_main and config.progress_bars else True)
    stop_reason = None
    window_loss, window_tokens = 0.0, 0
    wrapped.train()
    with StopSignal() as stop_signal:
        while step < config.steps:
            batches = [data.batch(step, config.batch_size, config.seed, world, rank)]
            supervised = data.supervised_batch(step, config.supervised_batch_size, config.seed, world, rank)
            if supervised is not None:
                batches.append(supervised)
            batches = [{k: v.to(device) for k, v in b.items()} for b in batches]
            local_tokens = sum(int((b["labels"] != IGNORE_INDEX).sum()) for b in batches)
            counts = torch.tensor([float(local_tokens)], device=device)
            global_tokens = float(accelerator.reduce(counts, reduction="sum")) if world > 1 else float(local_tokens)
            loss_sum = torch.zeros((), device=device, dtype=torch.float64)
            for batch in batches:
                with accelerator.autocast():
                    loss, _ = _loss_sum(wrapped, batch)
                accelerator.backward(loss * (world / global_tokens))  # DDP averages: × world makes it a sum
                loss_sum += loss.detach().double()
            accelerator.clip_grad_norm_(wrapped.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            shared = torch.stack([loss_sum, torch.tensor(float(stop_signal.received is not None), device=device,
                                                         dtype=torch.float64)])
            if world > 1:
                shared = accelerator.reduce(shared, reduction="sum")
            if not math.isfinite(float(shared[0])):  # stop; last/ keeps the last good checkpoint
                raise FloatingPointError(f"step {step}: the loss is not finite ({float(shared[0])}); the last good "
                                         f"checkpoint is {last_dir} (lower --lr?)")
            window_loss, window_tokens = window_loss + float(shared[0]), window_tokens + int(global_tokens)
            bar.update(1)
            bar.set_postfix(loss=f"{float(shared[0]) / global_tokens:.3f}", refresh=False)
            if step % config.log_every == 0:
                log.write({"event": "train", "step": step, "loss": window_loss / window_tokens,
                           "learning_rate": scheduler.get_last_lr()[0],
                           "elapsed_seconds": round(time.perf_counter() - started, 1)})
                window_loss, window_tokens = 0.0, 0
            if step % config.eval_every == 0 or step == config.steps:
                say(f"step {step}: held-out span-corruption loss {evaluate():.4f}")
            if float(shared[1]) > 0:
                stop_reason = stop_signal.received or "a signal on another process"
            elif config.stop_after_steps is not None and step >= config.stop_after_steps:
                stop_reason = f"--stop-after-steps {config.stop_after_steps}"
            if stop_reason is not None or step % config.save_every == 0 or step == config.steps:
                checkpoint()
            if stop_reason is not None:
                break
    bar.close()
    seconds = time.perf_counter() - started
    if stop_reason is not None:
        say(f"stopped after step {step} ({stop_reason}); resumable checkpoint in {last_dir}")
        return PretrainOutcome(False, step, history, None, stop_reason, seconds)
    if is_main:
        partial = sibling(model_dir, ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        save_model(unwrapped, tokenizer, partial, config.dropout_rate_saved)
        swap_in(partial, model_dir)
    accelerator.wait_for_everyone()
    return PretrainOutcome(True, step, history, model_dir, None, seconds)
