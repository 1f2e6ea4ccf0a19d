"""The pretraining loop: span corruption (+ supervised pairs) around the shared training core.

    pretrain(model, tokenizer, data, config)
      ├─ AdamW + linear warm-up/decay                    runners.training.optim (as fine-tuning)
      ├─ accelerator.prepare(model, optimizer)           DDP under torchrun / accelerate launch
      ├─ resume from last/: weights, optimizer, scheduler, RNG, step          _PretrainLoop.resume
      └─ per step                                                             _PretrainLoop.step
           ├─ span-corruption batch of the step (+ supervised batch)   runners.pretrain.data
           ├─ backward_token_loss, finish_step: the global mean token loss, all-reduce, clip 1.0,
           │  non-finite loss or gradient norm → NonFiniteLoss BEFORE the update   runners.training.step
           ├─ every eval_every steps: held-out span-corruption loss (log.jsonl, progress bar)
           └─ every save_every steps, at the end, on SIGINT/SIGTERM: last/ (resumable)
      then: model/ — save_pretrained weights + tokenizer, loadable with from_pretrained

A resumable checkpoint ``last/`` holds ``model.safetensors`` + ``config.json`` (save_pretrained),
one RNG file per process and ``training_state.pt`` (optimizer, scheduler, step, eval history),
written by `runners.training.checkpoint.CheckpointFolder` as fine-tuning's is.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from runners.finetune.batches import IGNORE_INDEX
from runners.finetune.jsonl_log import JsonlLog
from runners.training.checkpoint import CheckpointFolder, restore_rng_states, sibling, swap_in
from runners.training.optim import make_accelerator, make_optimizer, make_scheduler
from runners.training.signals import StopSignal
from runners.training.step import backward_token_loss, finish_step

from .data import PretrainData

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
    loop = _PretrainLoop(model, tokenizer, data, config, accelerator)
    if loop.step_count == 0 and not loop.history:
        loop.say(f"step 0: held-out span-corruption loss {loop.evaluate():.4f}")
    bar = tqdm(total=config.steps, initial=loop.step_count, desc="pretraining", dynamic_ncols=True,
               disable=None if loop.is_main and config.progress_bars else True)
    stop_reason = None
    loop.wrapped.train()
    with StopSignal() as stop_signal:
        while loop.step_count < config.steps and stop_reason is None:
            stop_reason = loop.step(stop_signal, bar)
    bar.close()
    if stop_reason is not None:
        loop.say(f"stopped after step {loop.step_count} ({stop_reason}); resumable checkpoint in {loop.last.path}")
        return PretrainOutcome(False, loop.step_count, loop.history, None, stop_reason, loop.seconds())
    loop.save_final_model()
    return PretrainOutcome(True, loop.step_count, loop.history, loop.model_dir, None, loop.seconds())


class _PretrainLoop:
    """What one call of `pretrain` holds: the prepared model and optimizer, the step, the history."""

    def __init__(self, model: nn.Module, tokenizer, data: PretrainData, config: PretrainConfig, accelerator=None):
        self.started = time.perf_counter()
        self.tokenizer, self.data, self.config = tokenizer, data, config
        self.accelerator = accelerator = accelerator or make_accelerator(config.precision, config.cpu)
        self.world, self.rank, self.is_main = accelerator.num_processes, accelerator.process_index, accelerator.is_main_process
        output = Path(config.output_dir)
        self.last = CheckpointFolder(output / "last", FORMAT)
        self.model_dir = output / "model"
        self.log = JsonlLog(output / "log.jsonl", enabled=self.is_main)
        if config.batch_size < self.world:
            raise ValueError(f"--batch-size {config.batch_size} is the global batch; it must be at least the "
                             f"{self.world} processes")
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = make_optimizer(self.trainable, config.learning_rate)
        self.scheduler = make_scheduler(optimizer, config.warmup_steps, config.steps)
        self.step_count, self.history = 0, []
        self.window_loss, self.window_tokens = 0.0, 0
        self._resume_or_seed(model, optimizer)
        self.wrapped, self.optimizer = accelerator.prepare(model, optimizer)
        self.unwrapped = accelerator.unwrap_model(self.wrapped)
        self.device = accelerator.device

    def _resume_or_seed(self, model: nn.Module, optimizer) -> None:
        config = self.config
        if config.resume and self.is_main:
            note = self.last.recover()
            if note:
                tqdm.write(f"note: {note}")
        self.accelerator.wait_for_everyone()
        if not (config.resume and self.last.is_complete()):
            torch.manual_seed(config.seed + self.rank)
            return
        from safetensors.torch import load_model

        load_model(model, str(self.last.path / "model.safetensors"), strict=False)
        state = self.last.read_state()
        if state.get("steps") != config.steps:
            raise ValueError(f"{self.last.path}: not a checkpoint of this run (planned steps {state.get('steps')} "
                             f"vs {config.steps})")
        optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step_count, self.history = state["step"], state["history"]
        rng = self.last.read_rng(self.rank)
        if rng is not None:
            restore_rng_states(rng)
        self.log.truncate_after_step(self.step_count)

    def say(self, message: str) -> None:
        if self.is_main:
            tqdm.write(message)

    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def step(self, stop_signal: StopSignal, bar) -> str | None:
        """One optimizer step (then log, evaluate, checkpoint as due); why to stop, or None."""
        config, accelerator = self.config, self.accelerator
        batches = [self.data.batch(self.step_count, config.batch_size, config.seed, self.world, self.rank)]
        supervised = self.data.supervised_batch(self.step_count, config.supervised_batch_size, config.seed,
                                                self.world, self.rank)
        if supervised is not None:
            batches.append(supervised)
        batches = [{k: v.to(self.device) for k, v in b.items()} for b in batches]
        local_tokens = sum(int((b["labels"] != IGNORE_INDEX).sum()) for b in batches)
        counts = torch.tensor([float(local_tokens)], device=self.device)
        global_tokens = float(accelerator.reduce(counts, reduction="sum")) if self.world > 1 else float(local_tokens)
        loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        for batch in batches:
            with accelerator.autocast():
                loss, _ = _loss_sum(self.wrapped, batch)
            backward_token_loss(accelerator, loss, global_tokens)
            loss_sum += loss.detach().double()
        step = self.step_count + 1
        result = finish_step(accelerator, loss_sum, stop_signal.received is not None, self.trainable, self.optimizer,
                             self.scheduler, config.max_grad_norm, describe=lambda loss, norm: self._non_finite(step, loss, norm))
        self.step_count = step
        self._after_step(result.loss_sum, global_tokens, bar)
        stop_reason = None
        if result.stop_requested:
            stop_reason = stop_signal.received or "a signal on another process"
        elif config.stop_after_steps is not None and step >= config.stop_after_steps:
            stop_reason = f"--stop-after-steps {config.stop_after_steps}"
        if stop_reason is not None or step % config.save_every == 0 or step == config.steps:
            self.checkpoint()
        return stop_reason

    def _non_finite(self, step: int, loss: float, norm: float) -> str:
        what = f"the loss {loss}" if not math.isfinite(loss) else f"the gradient norm {norm}"
        kept = (f"the last good checkpoint, {self.last.path}, is kept" if self.last.is_complete()
                else "no checkpoint was written before it")
        return f"step {step}: {what} is not finite; the step was not taken and {kept} (lower --lr?)"

    def _after_step(self, loss_sum: float, global_tokens: float, bar) -> None:
        """Progress bar, the log every log_every steps, the held-out loss every eval_every steps."""
        config, step = self.config, self.step_count
        self.window_loss, self.window_tokens = self.window_loss + loss_sum, self.window_tokens + int(global_tokens)
        bar.update(1)
        bar.set_postfix(loss=f"{loss_sum / global_tokens:.3f}", refresh=False)
        if step % config.log_every == 0:
            self.log.write({"event": "train", "step": step, "loss": self.window_loss / self.window_tokens,
                            "learning_rate": self.scheduler.get_last_lr()[0],
                            "elapsed_seconds": round(self.seconds(), 1)})
            self.window_loss, self.window_tokens = 0.0, 0
        if step % config.eval_every == 0 or step == config.steps:
            self.say(f"step {step}: held-out span-corruption loss {self.evaluate():.4f}")

    def evaluate(self) -> float:
        loss = held_out_loss(self.unwrapped, self.data, self.config.seed, self.device, self.accelerator.autocast)
        self.history.append({"step": self.step_count, "held_out_loss": loss})
        self.log.write({"event": "eval", "step": self.step_count, "held_out_loss": loss,
                        "elapsed_seconds": round(self.seconds(), 1)})
        return loss

    def checkpoint(self) -> None:
        """last/ (every process calls it): the model, each process's RNG, the training state last."""
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "step": self.step_count, "steps": self.config.steps, "history": self.history, "world_size": self.world}
        self.last.write(lambda folder: save_model(self.unwrapped, self.tokenizer, folder, dropout_rate=None), state,
                        rank=self.rank, is_main=self.is_main, barrier=self.accelerator.wait_for_everyone)

    def save_final_model(self) -> None:
        """model/: save_pretrained weights + tokenizer, with the fine-tuning dropout rate in its config."""
        if self.is_main:
            partial = sibling(self.model_dir, ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            save_model(self.unwrapped, self.tokenizer, partial, self.config.dropout_rate_saved)
            swap_in(partial, self.model_dir)
        self.accelerator.wait_for_everyone()
