"""The training loop: AdamW + linear warm-up schedule, exact resume, one or many processes.

    train(model, tokenizer, task, splits, config)
      ├─ tokenize splits                               runners.finetune.batches
      ├─ AdamW(β 0.9/0.999, ε 1e-8, no decay) + linear warm-up/decay    (the paper's protocol)
      ├─ accelerator.prepare(model, optimizer)         DDP under torchrun / accelerate launch
      ├─ resume: adapter, optimizer, scheduler, RNG, position          runners.finetune.state
      └─ per epoch
           ├─ per global batch (same on every process; each takes its shard)
           │    ├─ micro-batches: forward → summed token loss / tokens in the GLOBAL batch → backward
           │    └─ clip 1.0 → step → schedule; stop here on --stop-after-steps or SIGINT/SIGTERM
           ├─ greedy generate() on validation → task metrics → best checkpoint   (runners.finetune.evaluation)
           └─ resumable checkpoint `last/`
      then: load `best/`, score the test split

Why the loss is normalised by the global batch's token count: the objective of a step is then
the mean token loss over the whole global batch, whatever the number of processes or
accumulation steps, so 2 processes × batch 2 compute the same update as 1 process × batch 4
(up to float summation order), and accumulation does not weight short micro-batches up.

`--batch-size` is therefore the *global* batch (the paper's 100): examples per optimizer step
over all processes and accumulation steps.

>>> scheduler = make_scheduler(make_optimizer([nn.Parameter(torch.zeros(1))], 1.0), warmup_steps=2, total_steps=10)
>>> [round(scheduler.lr_lambdas[0](step), 3) for step in (0, 1, 2, 6, 10)]   # learning-rate factor per step
[0.0, 0.5, 1.0, 0.5, 0.0]
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

import surgery

from .errors import NonFiniteLoss, TrainingSetupError
from .results import JsonlLog
from .resume import restore
from .batches import (IGNORE_INDEX, EncodedExample, collate, encode_pairs, encode_sources, epoch_permutation,
                            global_batches, length_grouped_batches, shard)
from .evaluation import evaluate
from .state import Progress, frozen_checksum, save_adapter_atomically, save_checkpoint

__all__ = ["NonFiniteLoss", "TrainConfig", "TrainOutcome", "TrainingSetupError", "make_accelerator", "make_optimizer",
           "make_scheduler", "train"]

ADAM_BETAS = (0.9, 0.999)
ADAM_EPSILON = 1e-8


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


def make_optimizer(parameters: list[nn.Parameter], learning_rate: float) -> torch.optim.AdamW:
    """The paper's AdamW: β 0.9/0.999, ε 1e-8, no weight decay."""
    # foreach: one multi-tensor kernel per update instead of a Python loop over the many small
    # adapter tensors (on CPU torch defaults to the loop; 177 Compacter tensors: 4.0 → 2.1 ms).
    return torch.optim.AdamW(parameters, lr=learning_rate, betas=ADAM_BETAS, eps=ADAM_EPSILON, weight_decay=0.0,
                             foreach=True)


def make_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int,
                   total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """The paper's schedule: the factor rises 0 → 1 over `warmup_steps`, then falls to 0 at `total_steps`.

    This is `transformers.get_linear_schedule_with_warmup`; its LambdaLR's state_dict (saved in
    `last/`) restores the position exactly on resume.
    """
    return get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)


def resolve_precision(precision: str, cpu: bool) -> str:
    """`auto`: bf16 on a GPU that supports it, else full precision (T5 overflows in fp16)."""
    if precision not in ("auto", "no", "bf16", "fp16"):
        raise ValueError(f"precision {precision!r} is not one of auto, no, bf16, fp16")
    if precision != "auto":
        return precision
    if not cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


def make_accelerator(precision: str = "auto", cpu: bool = False):
    """An `accelerate.Accelerator` for this process (reads torchrun / accelerate launch settings)."""
    from accelerate import Accelerator

    return Accelerator(mixed_precision=resolve_precision(precision, cpu), cpu=cpu)


class StopSignal:
    """SIGINT/SIGTERM ask training to stop at the next step boundary (a second SIGINT aborts)."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignal:
        try:
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        except ValueError:  # not the main thread: no handlers, training still works
            pass
        return self

    def _handle(self, number: int, frame) -> None:
        if self.received and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signal.Signals(number).name

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


@dataclass
class _Data:
    train: list[EncodedExample]
    validation_rows: list[dict]
    validation_sources: list[list[int]]
    test_rows: list[dict]
    test_sources: list[list[int]]
    generation_max_length: int


def _tokenize(tokenizer, task, splits: dict[str, list[dict]], config: TrainConfig) -> _Data:
    pairs = [pair for row in splits["train"] for pair in task.to_training_texts(row)]
    if not pairs:
        raise TrainingSetupError(f"task {task.name!r}: the training split is empty")
    train = encode_pairs(tokenizer, pairs, config.max_source_length, config.max_target_length)
    longest = max(len(example.target_ids) for example in train)
    generation = config.generation_max_length or min(config.max_target_length, longest + 2)

    def sources(rows: list[dict]) -> list[list[int]]:
        return encode_sources(tokenizer, [task.to_text(row)[0] for row in rows], config.max_source_length)

    return _Data(train, splits["validation"], sources(splits["validation"]), splits["test"], sources(splits["test"]),
                 generation)


def _token_loss_sum(model, batch: dict[str, torch.Tensor], decoder_inputs: Callable) -> torch.Tensor:
    """Summed cross-entropy over the non-padding target tokens of a batch."""
    labels = batch["labels"]
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   decoder_input_ids=decoder_inputs(labels=labels)).logits
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                           ignore_index=IGNORE_INDEX, reduction="sum")


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

    `model` is a seq2seq model surgery was applied to; `splits` maps train/validation/test to rows
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
    started = time.perf_counter()
    accelerator = accelerator or make_accelerator(config.precision, config.cpu)
    world, rank, is_main = accelerator.num_processes, accelerator.process_index, accelerator.is_main_process
    output_dir = Path(config.output_dir)
    last_dir, best_dir = output_dir / "last", output_dir / "best"
    log = log or JsonlLog(output_dir / "log.jsonl", enabled=is_main)

    def say(message: str) -> None:
        if is_main and config.print_epochs:
            tqdm.write(message)

    bars_off = None if is_main and config.progress_bars else True  # None: tqdm hides bars when not on a terminal

    if config.batch_size < world * config.grad_accum:
        raise TrainingSetupError(f"--batch-size {config.batch_size} is the global batch; it must be at least "
                                 f"processes × --grad-accum = {world} × {config.grad_accum} = {world * config.grad_accum}")
    data = _tokenize(tokenizer, task, splits, config)
    micro_batch = math.ceil(config.batch_size / (world * config.grad_accum))
    eval_batch_size = config.eval_batch_size or micro_batch
    steps_per_epoch = len(global_batches(range(len(data.train)), config.batch_size, world * config.grad_accum))
    if steps_per_epoch == 0:
        raise TrainingSetupError(f"{len(data.train)} training examples cannot fill one batch for {world} processes × "
                                 f"{config.grad_accum} accumulation steps")
    total_steps = steps_per_epoch * config.epochs

    if config.gradient_checkpointing:
        # Non-reentrant: gradients reach the adapters even though the blocks' inputs need none.
        # (transformers 5.2x renamed it activation_checkpointing_enable; the old name is deprecated.)
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if config.dropout is not None:
        set_dropout(model, config.dropout)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(trainable, config.learning_rate)
    scheduler = make_scheduler(optimizer, config.warmup_steps, total_steps)
    checksum = frozen_checksum(model)
    wrapped, optimizer = accelerator.prepare(model, optimizer)
    unwrapped = accelerator.unwrap_model(wrapped)
    device = accelerator.device

    if config.resume_from is not None:
        folder = Path(config.resume_from)
        progress = restore(folder, unwrapped, optimizer, scheduler, accelerator.scaler, rank=rank, seed=config.seed,
                           checksum=checksum, total_steps=total_steps, log=log)
        say(f"resumed from {folder} at epoch {progress.epoch + 1}, step {progress.global_step}")
    else:
        from accelerate.utils import set_seed

        progress = Progress()
        log.start()
        set_seed(config.seed + rank)  # the dropout stream; the model was initialised before

    def training_state() -> dict[str, Any]:
        progress.log_records = log.records
        return {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "scaler": accelerator.scaler.state_dict() if accelerator.scaler is not None else None,
                "progress": progress.to_dict(), "frozen_checksum": checksum, "total_steps": total_steps,
                "world_size": world}

    def checkpoint() -> None:
        save_checkpoint(last_dir, unwrapped, training_state(), rank, is_main, accelerator.wait_for_everyone)

    def validate() -> dict[str, float]:
        bar = tqdm(total=len(data.validation_rows), desc="validation", leave=False, dynamic_ncols=True,
                   disable=bars_off)
        result = evaluate(unwrapped, tokenizer, task, data.validation_rows, data.validation_sources,
                          batch_size=eval_batch_size, max_new_tokens=data.generation_max_length, device=device,
                          world_size=world, rank=rank, autocast=accelerator.autocast, progress=bar)
        bar.close()
        return result.scores

    decoder_inputs = unwrapped.prepare_decoder_input_ids_from_labels
    target_lengths = [len(example.target_ids) for example in data.train]
    source_lengths = [len(example.source_ids) for example in data.train]
    stop_reason: str | None = None
    wrapped.train()
    with StopSignal() as stop_signal:
        while progress.epoch < config.epochs and stop_reason is None:
            epoch = progress.epoch
            order = epoch_permutation(len(data.train), config.seed, epoch)
            if config.group_by_length:
                batches = length_grouped_batches(order, source_lengths, config.batch_size, config.seed, epoch,
                                                 world * config.grad_accum)
            else:
                batches = global_batches(order, config.batch_size, world * config.grad_accum)
            epoch_started = time.perf_counter()
            bar = tqdm(total=len(batches), initial=progress.step_in_epoch, desc=f"epoch {epoch + 1}/{config.epochs}",
                       leave=False, dynamic_ncols=True, disable=bars_off)
            while progress.step_in_epoch < len(batches):
                indices = batches[progress.step_in_epoch]
                tokens_in_batch = sum(target_lengths[i] for i in indices)
                micro_batches = shard(indices, world, rank, config.grad_accum)
                loss_sum = torch.zeros((), device=device, dtype=torch.float64)
                for position, micro in enumerate(micro_batches):
                    batch = {k: v.to(device) for k, v in collate([data.train[i] for i in micro], tokenizer.pad_token_id).items()}
                    is_last = position == len(micro_batches) - 1
                    with nullcontext() if is_last else accelerator.no_sync(wrapped):
                        with accelerator.autocast():
                            token_loss = _token_loss_sum(wrapped, batch, decoder_inputs)
                        # DDP averages gradients over processes: × world makes it a sum over the global batch.
                        accelerator.backward(token_loss * (world / tokens_in_batch))
                    loss_sum += token_loss.detach().double()
                # One small all-reduce per step: the global loss and whether any process was signalled.
                shared = torch.stack([loss_sum, torch.tensor(float(stop_signal.received is not None), device=device,
                                                             dtype=torch.float64)])
                if world > 1:
                    shared = accelerator.reduce(shared, reduction="sum")
                step_loss = float(shared[0]) / tokens_in_batch
                grad_norm = accelerator.clip_grad_norm_(trainable, config.max_grad_norm)
                # A NaN/inf loss (or, without a grad scaler to skip it, gradient) would poison every parameter:
                # stop before the update; last/ keeps the last good checkpoint.
                if not math.isfinite(step_loss) or (accelerator.scaler is None and not math.isfinite(float(grad_norm))):
                    raise NonFiniteLoss(_non_finite_message(step_loss, float(grad_norm), progress, epoch, last_dir))
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                progress.step_in_epoch += 1
                progress.global_step += 1
                progress.epoch_loss_sum += float(shared[0])
                progress.epoch_tokens += tokens_in_batch
                progress.window_loss_sum += float(shared[0])
                progress.window_tokens += tokens_in_batch
                learning_rate = scheduler.get_last_lr()[0]
                bar.update(1)
                bar.set_postfix(loss=f"{step_loss:.4f}", lr=f"{learning_rate:.2e}", refresh=False)
                if progress.global_step % config.log_every == 0:
                    log.write({"event": "train", "epoch": epoch + 1, "step": progress.global_step,
                               "loss": progress.window_loss_sum / progress.window_tokens, "learning_rate": learning_rate,
                               "grad_norm": float(grad_norm), "elapsed_seconds": round(time.perf_counter() - started, 3)})
                    progress.window_loss_sum, progress.window_tokens = 0.0, 0
                if float(shared[1]) > 0:
                    stop_reason = stop_signal.received or "a signal on another process"
                elif config.stop_after_steps is not None and progress.global_step >= config.stop_after_steps:
                    stop_reason = f"--stop-after-steps {config.stop_after_steps}"
                if stop_reason is not None:
                    break
                if config.save_every_steps and progress.global_step % config.save_every_steps == 0:
                    checkpoint()
            bar.close()
            if stop_reason is not None:
                break

            # End of the epoch: evaluate, keep the best adapter, write the resumable checkpoint.
            train_loss = progress.epoch_loss_sum / max(1, progress.epoch_tokens)
            record: dict[str, Any] = {"event": "eval", "epoch": epoch + 1, "step": progress.global_step,
                                      "train_loss": train_loss}
            line = f"epoch {epoch + 1:>3}/{config.epochs}  train loss {train_loss:.4f}"
            if (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs:
                scores = validate()
                score = task.summary_score(scores)
                is_best = progress.best_score is None or score > progress.best_score
                if is_best:
                    progress.best_score, progress.best_epoch, progress.best_validation = score, epoch + 1, scores
                    if is_main:
                        save_adapter_atomically(unwrapped, best_dir, config.task_record)
                record.update(validation=scores, best=is_best)
                line += f"  validation {_format_scores(scores)}" + ("  (best)" if is_best else "")
            record["epoch_seconds"] = round(time.perf_counter() - epoch_started, 3)
            log.write(record)
            say(line + f"  [{record['epoch_seconds']:.1f}s]")
            progress.history.append(record)
            progress.epoch += 1
            progress.step_in_epoch = 0
            progress.epoch_loss_sum, progress.epoch_tokens = 0.0, 0
            checkpoint()

    if stop_reason is not None:
        checkpoint()
        say(f"stopped after step {progress.global_step} ({stop_reason}); resumable checkpoint in {last_dir}")
        return TrainOutcome(False, progress, last_dir, best_dir if best_dir.exists() else None,
                            seconds=time.perf_counter() - started, stop_reason=stop_reason)

    # Test score of the best validation checkpoint (the paper's protocol).
    accelerator.wait_for_everyone()
    if best_dir.exists():
        surgery.load_adapter(unwrapped, best_dir)
    bar = tqdm(total=len(data.test_rows), desc="test", leave=False, dynamic_ncols=True,
               disable=bars_off)
    test = evaluate(unwrapped, tokenizer, task, data.test_rows, data.test_sources, batch_size=eval_batch_size,
                    max_new_tokens=data.generation_max_length, device=device, world_size=world, rank=rank,
                    autocast=accelerator.autocast, progress=bar)
    bar.close()
    log.write({"event": "test", "step": progress.global_step, "best_epoch": progress.best_epoch, "test": test.scores})
    return TrainOutcome(True, progress, last_dir, best_dir if best_dir.exists() else None, test=test.scores,
                        test_predictions=test.predictions, seconds=time.perf_counter() - started)
