"""Fine-tuning's loop: its data, its evaluation and its best checkpoint around the shared training core.

    train(model, tokenizer, task, splits, config)
      ├─ tokenize splits                               runners.finetune.batches
      ├─ AdamW(β 0.9/0.999, ε 1e-8, no decay) + linear warm-up/decay    runners.training (the paper's protocol)
      ├─ accelerator.prepare(model, optimizer)         DDP under torchrun / accelerate launch
      ├─ resume: adapter, optimizer, scheduler, RNG, position          runners.finetune.resume
      └─ per epoch                                     _FinetuneLoop.run_epoch
           ├─ per global batch (same on every process; each takes its shard)        _FinetuneLoop.step
           │    ├─ micro-batches: forward → summed token loss → backward_token_loss   (runners.training;
           │    │  the batch and the loss as the model's kind makes them: runners.finetune.model_kind)
           │    └─ finish_step: all-reduce, clip 1.0, non-finite check, step, schedule
           │       stop here on --stop-after-steps or SIGINT/SIGTERM
           ├─ predict on validation (greedy generate(); a classifier's argmax) → task metrics → best checkpoint
           └─ resumable checkpoint `last/`                  runners.training.CheckpointFolder
      then: load `best/`, score the test split              _FinetuneLoop.test

`--batch-size` is the *global* batch (the paper's 100): examples per optimizer step over all
processes and accumulation steps; the loss is the mean token loss over it (runners.training).
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from runners.training.optim import ADAM_BETAS, ADAM_EPSILON, make_accelerator, make_optimizer, make_scheduler, resolve_precision
from runners.training.signals import StopSignal
from runners.training.step import NonFiniteLoss, StepResult, backward_token_loss, finish_step

from .errors import TrainingSetupError
from .jsonl_log import JsonlLog
from .resume import restore
from .batches import EncodedExample, epoch_permutation, global_batches, length_grouped_batches, shard
from .model_kind import SEQ2SEQ, ModelKind, kind_of_model, pad_id
from .evaluation import evaluate
from .state import Progress, frozen_checksum, load_trained, save_adapter_atomically, save_checkpoint

__all__ = ["ADAM_BETAS", "ADAM_EPSILON", "NonFiniteLoss", "StopSignal", "TrainConfig", "TrainOutcome",
           "TrainingSetupError", "make_accelerator", "make_optimizer", "make_scheduler", "resolve_precision",
           "set_dropout", "train"]


@dataclass
class TrainConfig:
    """Every setting of one training run (defaults: the paper's protocol where it has one)."""

    output_dir: str | Path
    epochs: int = 20
    batch_size: int = 100                   # global: examples per optimizer step, all processes together
    grad_accum: int = 1                     # micro-batches per process and step
    learning_rate: float = 3e-4
    warmup_steps: int = 500
    max_grad_norm: float = 1.0
    max_source_length: int = 128
    max_target_length: int = 128
    generation_max_length: int | None = None  # None: longest training target (+2), capped by max_target_length
    eval_batch_size: int | None = None        # None: the training micro-batch size
    eval_every: int = 1                       # evaluate (and pick the best) every N epochs, and after the last
    log_every: int = 10                       # optimizer steps between JSON-lines records
    seed: int = 42
    precision: str = "auto"                   # auto | no | bf16 | fp16
    cpu: bool = False                         # train on CPU even where a GPU is present
    resume_from: str | Path | None = None     # a resumable checkpoint folder (`last/`)
    stop_after_steps: int | None = None       # debugging: save a resumable checkpoint and stop after N steps
    save_every_steps: int | None = None       # also write `last/` every N steps (besides every epoch)
    progress_bars: bool = True
    gradient_checkpointing: bool = False      # recompute block activations in backward (memory for compute)
    dropout: float | None = None              # every drop probability of the model (set_dropout); None: its own
    group_by_length: bool = False             # batches of similar source length (less padding; batches.py)
    print_epochs: bool = True                 # one summary line per epoch on the main process
    task_record: dict[str, Any] | None = None  # task.json beside best/'s adapter (runners.tasks.task_record)


@dataclass
class TrainOutcome:
    """How a call to `train` ended."""

    completed: bool                           # False: stopped early; resume from `checkpoint`
    progress: Progress
    checkpoint: Path                          # the resumable checkpoint folder (`last/`)
    best_checkpoint: Path | None
    test: dict[str, float] | None = None
    test_predictions: list[str] | None = None  # decoded, in the test rows' order
    seconds: float = 0.0
    stop_reason: str | None = None


@dataclass
class _Data:
    train: list[EncodedExample]
    validation_rows: list[dict]
    validation_sources: list[list[int]]
    test_rows: list[dict]
    test_sources: list[list[int]]
    generation_max_length: int


def _tokenize(tokenizer, task, splits: dict[str, list[dict]], config: TrainConfig, kind: ModelKind = SEQ2SEQ) -> _Data:
    pairs = [pair for row in splits["train"] for pair in task.to_training_texts(row)]
    if not pairs:
        raise TrainingSetupError(f"task {task.name!r}: the training split is empty")
    train = kind.encode_training(tokenizer, task, pairs, config.max_source_length, config.max_target_length)
    longest = max(len(example.target_ids) for example in train)
    generation = config.generation_max_length or min(config.max_target_length, longest + 2)

    def sources(rows: list[dict]) -> list[list[int]]:
        return kind.encode_inputs(tokenizer, [task.to_text(row)[0] for row in rows], config.max_source_length)

    return _Data(train, splits["validation"], sources(splits["validation"]), splits["test"], sources(splits["test"]),
                 generation)


def _token_loss_sum(model, batch: dict[str, torch.Tensor], kind: ModelKind, unwrapped: nn.Module) -> torch.Tensor:
    """Summed loss over the batch's target tokens (a classifier's: its examples), as the model's kind computes it."""
    return kind.loss_sum(model, batch, unwrapped)


def _non_finite_message(loss: float, grad_norm: float, progress: Progress, epoch: int, last_dir: Path) -> str:
    what = f"training loss {loss}" if not math.isfinite(loss) else f"gradient norm {grad_norm}"
    kept = (f"the last good checkpoint, {last_dir} (step {_saved_step(last_dir)}), is kept"
            if (last_dir / "training_state.pt").is_file() else "no checkpoint was written before it")
    return (f"non-finite {what} at step {progress.global_step + 1} (epoch {epoch + 1}); the step was not taken and {kept}; "
            "lower --lr (or check the data) and start a new run")


def _saved_step(folder: Path) -> int | str:
    try:
        return torch.load(folder / "training_state.pt", map_location="cpu", weights_only=False)["progress"]["global_step"]
    except Exception:  # only for the message
        return "?"


def _format_scores(scores: dict[str, float]) -> str:
    return " ".join(f"{name} {value:.1f}" for name, value in scores.items())


def set_dropout(model: nn.Module, probability: float) -> int:
    """Set every drop probability in `model`: each `nn.Dropout` (T5's and any inserted module's) and
    each float ``dropout`` attribute (T5Attention drops attention weights with one); returns how many.

    >>> model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1), nn.Sequential(nn.Dropout(0.3)))
    >>> set_dropout(model, 0.0), [m.p for m in model.modules() if isinstance(m, nn.Dropout)]
    (2, [0.0, 0.0])
    """
    changed = 0
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = probability
            changed += 1
        elif isinstance(getattr(module, "dropout", None), float):
            module.dropout = probability
            changed += 1
    return changed


def train(model: nn.Module, tokenizer, task, splits: dict[str, list[dict]], config: TrainConfig,
          accelerator=None, log: JsonlLog | None = None) -> TrainOutcome:
    """Train the model's trainable parameters on `task`; returns test scores of the best checkpoint.

    `model` is a model surgery was applied to, of any kind (`runners.finetune.model_kind`: seq2seq,
    causal LM, sequence classifier); `splits` maps train/validation/test to rows
    (as from `runners.tasks.data.load_task_splits`). Writes `best/` (adapter of the best validation
    epoch) and `last/` (resumable) into `config.output_dir`.

    >>> import tempfile, surgery
    >>> from transformers import T5Config, T5ForConditionalGeneration
    >>> from runners.tasks.data import embedded_tokenizer, load_embedded
    >>> from runners.tasks import get_task
    >>> tokenizer = embedded_tokenizer()
    >>> model = T5ForConditionalGeneration(T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64,
    ...     num_layers=1, num_heads=4, decoder_start_token_id=0))
    >>> _ = surgery.apply(model, "adapter")
    >>> splits = {name: rows[:16] for name, rows in load_embedded().items()}
    >>> config = TrainConfig(output_dir=tempfile.mkdtemp(), epochs=1, batch_size=8, warmup_steps=0,
    ...                      learning_rate=3e-3, progress_bars=False, print_epochs=False)
    >>> outcome = train(model, tokenizer, get_task("embedded-sst2"), splits, config)
    >>> outcome.completed, outcome.progress.global_step, sorted(outcome.test)
    (True, 2, ['accuracy'])
    """
    loop = _FinetuneLoop(model, tokenizer, task, splits, config, accelerator, log)
    stop_reason: str | None = None
    loop.wrapped.train()
    with StopSignal() as stop_signal:
        while loop.progress.epoch < config.epochs and stop_reason is None:
            stop_reason = loop.run_epoch(stop_signal)
    if stop_reason is not None:
        loop.checkpoint()
        loop.say(f"stopped after step {loop.progress.global_step} ({stop_reason}); resumable checkpoint in {loop.last_dir}")
        return loop.outcome(completed=False, stop_reason=stop_reason)
    test = loop.test()
    return loop.outcome(completed=True, test=test.scores, test_predictions=test.predictions)


class _FinetuneLoop:
    """What one call of `train` holds: the prepared model and optimizer, the data, the progress."""

    def __init__(self, model: nn.Module, tokenizer, task, splits: dict[str, list[dict]], config: TrainConfig,
                 accelerator=None, log: JsonlLog | None = None):
        self.started = time.perf_counter()
        self.task, self.tokenizer, self.config = task, tokenizer, config
        self.accelerator = accelerator = accelerator or make_accelerator(config.precision, config.cpu)
        self.world, self.rank, self.is_main = accelerator.num_processes, accelerator.process_index, accelerator.is_main_process
        output_dir = Path(config.output_dir)
        self.last_dir, self.best_dir = output_dir / "last", output_dir / "best"
        self.log = log or JsonlLog(output_dir / "log.jsonl", enabled=self.is_main)
        self.bars_off = None if self.is_main and config.progress_bars else True  # None: tqdm hides bars off a terminal
        self.parts = self.world * config.grad_accum  # micro-batches per global batch
        if config.batch_size < self.parts:
            raise TrainingSetupError(f"--batch-size {config.batch_size} is the global batch; it must be at least "
                                     f"processes × --grad-accum = {self.world} × {config.grad_accum} = {self.parts}")
        self.kind = kind_of_model(model)  # seq2seq, causal or classifier: batches, loss and scoring follow it
        self.data = _tokenize(tokenizer, task, splits, config, self.kind)
        self.eval_batch_size = config.eval_batch_size or math.ceil(config.batch_size / self.parts)
        steps_per_epoch = len(global_batches(range(len(self.data.train)), config.batch_size, self.parts))
        if steps_per_epoch == 0:
            raise TrainingSetupError(f"{len(self.data.train)} training examples cannot fill one batch for {self.world} "
                                     f"processes × {config.grad_accum} accumulation steps")
        self.total_steps = steps_per_epoch * config.epochs
        _prepare_model(model, config)
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = make_optimizer(self.trainable, config.learning_rate)
        self.scheduler = make_scheduler(optimizer, config.warmup_steps, self.total_steps)
        self.checksum = frozen_checksum(model)
        self.wrapped, self.optimizer = accelerator.prepare(model, optimizer)
        self.unwrapped = accelerator.unwrap_model(self.wrapped)
        self.device = accelerator.device
        self.progress = self._start()
        self.target_lengths = [self.kind.loss_terms(example) for example in self.data.train]
        self.source_lengths = [len(example.source_ids) for example in self.data.train]

    def _start(self) -> Progress:
        """A fresh Progress (and log), or the one of the checkpoint to resume from."""
        if self.config.resume_from is None:
            from accelerate.utils import set_seed

            self.log.start()
            set_seed(self.config.seed + self.rank)  # the dropout stream; the model was initialised before
            return Progress()
        folder = Path(self.config.resume_from)
        progress = restore(folder, self.unwrapped, self.optimizer, self.scheduler, self.accelerator.scaler,
                           rank=self.rank, seed=self.config.seed, checksum=self.checksum,
                           total_steps=self.total_steps, log=self.log)
        self.say(f"resumed from {folder} at epoch {progress.epoch + 1}, step {progress.global_step}")
        return progress

    def say(self, message: str) -> None:
        if self.is_main and self.config.print_epochs:
            tqdm.write(message)

    def _batches(self, epoch: int) -> list[list[int]]:
        order = epoch_permutation(len(self.data.train), self.config.seed, epoch)
        if self.config.group_by_length:
            return length_grouped_batches(order, self.source_lengths, self.config.batch_size, self.config.seed, epoch,
                                          self.parts)
        return global_batches(order, self.config.batch_size, self.parts)

    def run_epoch(self, stop_signal: StopSignal) -> str | None:
        """Train the rest of the current epoch; then evaluate and checkpoint. Why it stopped early, or None."""
        epoch, progress, config = self.progress.epoch, self.progress, self.config
        batches = self._batches(epoch)
        epoch_started = time.perf_counter()
        bar = tqdm(total=len(batches), initial=progress.step_in_epoch, desc=f"epoch {epoch + 1}/{config.epochs}",
                   leave=False, dynamic_ncols=True, disable=self.bars_off)
        try:
            while progress.step_in_epoch < len(batches):
                indices = batches[progress.step_in_epoch]
                result = self.step(indices, stop_signal)
                bar.update(1)
                bar.set_postfix(loss=f"{result.loss_sum / self._tokens(indices):.4f}",
                                lr=f"{self.scheduler.get_last_lr()[0]:.2e}", refresh=False)
                if result.stop_requested:
                    return stop_signal.received or "a signal on another process"
                if config.stop_after_steps is not None and progress.global_step >= config.stop_after_steps:
                    return f"--stop-after-steps {config.stop_after_steps}"
                if config.save_every_steps and progress.global_step % config.save_every_steps == 0:
                    self.checkpoint()
        finally:
            bar.close()
        self.end_epoch(epoch, epoch_started)
        return None

    def _tokens(self, indices: list[int]) -> int:
        return sum(self.target_lengths[i] for i in indices)

    def step(self, indices: list[int], stop_signal: StopSignal) -> StepResult:
        """One optimizer step on the global batch `indices` (this process takes its shard)."""
        tokens_in_batch, accelerator = self._tokens(indices), self.accelerator
        micro_batches = shard(indices, self.world, self.rank, self.config.grad_accum)
        loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        for position, micro in enumerate(micro_batches):
            batch = {k: v.to(self.device) for k, v in self.kind.collate([self.data.train[i] for i in micro],
                                                                         pad_id(self.tokenizer)).items()}
            with nullcontext() if position == len(micro_batches) - 1 else accelerator.no_sync(self.wrapped):
                with accelerator.autocast():
                    token_loss = _token_loss_sum(self.wrapped, batch, self.kind, self.unwrapped)
                backward_token_loss(accelerator, token_loss, tokens_in_batch)
            loss_sum += token_loss.detach().double()
        progress, epoch = self.progress, self.progress.epoch
        result = finish_step(accelerator, loss_sum, stop_signal.received is not None, self.trainable, self.optimizer,
                             self.scheduler, self.config.max_grad_norm,
                             describe=lambda loss, norm: _non_finite_message(loss / tokens_in_batch, norm, progress,
                                                                             epoch, self.last_dir))
        progress.step_in_epoch += 1
        progress.global_step += 1
        progress.epoch_loss_sum += result.loss_sum
        progress.epoch_tokens += tokens_in_batch
        progress.window_loss_sum += result.loss_sum
        progress.window_tokens += tokens_in_batch
        if progress.global_step % self.config.log_every == 0:
            self.log.write({"event": "train", "epoch": epoch + 1, "step": progress.global_step,
                            "loss": progress.window_loss_sum / progress.window_tokens,
                            "learning_rate": self.scheduler.get_last_lr()[0], "grad_norm": result.grad_norm,
                            "elapsed_seconds": round(time.perf_counter() - self.started, 3)})
            progress.window_loss_sum, progress.window_tokens = 0.0, 0
        return result

    def end_epoch(self, epoch: int, epoch_started: float) -> None:
        """Evaluate (every eval_every epochs and after the last), keep the best adapter, checkpoint."""
        progress, config = self.progress, self.config
        train_loss = progress.epoch_loss_sum / max(1, progress.epoch_tokens)
        record: dict[str, Any] = {"event": "eval", "epoch": epoch + 1, "step": progress.global_step,
                                  "train_loss": train_loss}
        line = f"epoch {epoch + 1:>3}/{config.epochs}  train loss {train_loss:.4f}"
        if (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs:
            scores = self._evaluate("validation", self.data.validation_rows, self.data.validation_sources).scores
            score = self.task.summary_score(scores)
            is_best = progress.best_score is None or score > progress.best_score
            if is_best:
                progress.best_score, progress.best_epoch, progress.best_validation = score, epoch + 1, scores
                if self.is_main:
                    save_adapter_atomically(self.unwrapped, self.best_dir, config.task_record)
            record.update(validation=scores, best=is_best)
            line += f"  validation {_format_scores(scores)}" + ("  (best)" if is_best else "")
        record["epoch_seconds"] = round(time.perf_counter() - epoch_started, 3)
        self.log.write(record)
        self.say(line + f"  [{record['epoch_seconds']:.1f}s]")
        progress.history.append(record)
        progress.epoch += 1
        progress.step_in_epoch = 0
        progress.epoch_loss_sum, progress.epoch_tokens = 0.0, 0
        self.checkpoint()

    def _evaluate(self, split: str, rows: list[dict], sources: list[list[int]]):
        """Greedy generation on a split → its scores and predictions (runners.finetune.evaluation)."""
        bar = tqdm(total=len(rows), desc=split, leave=False, dynamic_ncols=True, disable=self.bars_off)
        try:
            return evaluate(self.unwrapped, self.tokenizer, self.task, rows, sources, batch_size=self.eval_batch_size,
                            kind=self.kind,
                            max_new_tokens=self.data.generation_max_length, device=self.device,
                            world_size=self.world, rank=self.rank, autocast=self.accelerator.autocast, progress=bar)
        finally:
            bar.close()

    def checkpoint(self) -> None:
        """The resumable `last/` (every process calls it)."""
        self.progress.log_records = self.log.records
        scaler = self.accelerator.scaler
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "scaler": scaler.state_dict() if scaler is not None else None, "progress": self.progress.to_dict(),
                 "frozen_checksum": self.checksum, "total_steps": self.total_steps, "world_size": self.world}
        save_checkpoint(self.last_dir, self.unwrapped, state, self.rank, self.is_main, self.accelerator.wait_for_everyone)

    def test(self):
        """Test scores and predictions of the best validation checkpoint (the paper's protocol)."""
        self.accelerator.wait_for_everyone()
        if self.best_dir.exists():
            load_trained(self.unwrapped, self.best_dir)
        test = self._evaluate("test", self.data.test_rows, self.data.test_sources)
        self.log.write({"event": "test", "step": self.progress.global_step, "best_epoch": self.progress.best_epoch,
                        "test": test.scores})
        return test

    def outcome(self, *, completed: bool, test: dict[str, float] | None = None,
                test_predictions: list[str] | None = None, stop_reason: str | None = None) -> TrainOutcome:
        return TrainOutcome(completed, self.progress, self.last_dir, self.best_dir if self.best_dir.exists() else None,
                            test=test, test_predictions=test_predictions, seconds=time.perf_counter() - self.started,
                            stop_reason=stop_reason)


def _prepare_model(model: nn.Module, config: TrainConfig) -> None:
    """Gradient checkpointing and the drop probability, as the config asks."""
    if config.gradient_checkpointing:
        # Non-reentrant: gradients reach the adapters even though the blocks' inputs need none.
        # (transformers 5.2x renamed it activation_checkpointing_enable; the old name is deprecated.)
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if config.dropout is not None:
        set_dropout(model, config.dropout)
