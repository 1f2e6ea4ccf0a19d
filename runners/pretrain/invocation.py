"""An invocation of `runners.pretrain`, resolved: arguments checked, corpus read, model and data built.

Every default comes from the embedded pretraining recipe (``runners.embedded.PRETRAINING``), so
``python -m runners.pretrain`` with no argument rebuilds the shipped embedded model. A resumed run
(``--resume DIR``) takes its arguments from ``DIR/arguments.json`` and refuses changed ones.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runners.errors import EXIT_INTERRUPTED, EXIT_USAGE, UsageError
from runners.output_folder import ARGUMENTS_FILE, OutputLock, check_output_path, claim_output_folder, folder_refusal
from runners.output_folder import write_json

__all__ = ["EXIT_INTERRUPTED", "EXIT_USAGE", "PretrainRun", "UsageError", "is_main_process", "prepare_run"]


RUNNER = "runners.pretrain"
RESUME_MAY_CHANGE = {"resume", "stop_after_steps", "no_progress", "log_every", "threads", "overwrite"}
POSITIVE = ("steps", "batch_size", "chunk_length", "eval_every", "save_every", "log_every", "threads",
            "max_documents", "stop_after_steps")


@dataclass
class PretrainRun:
    model: Any
    tokenizer: Any
    data: Any
    config: Any
    source: str
    lock: OutputLock | None = None  # held by the main process while it writes into the output folder

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def describe(self) -> str:
        size = sum(p.numel() for p in self.model.parameters())
        c = self.model.config
        data = self.data
        return (f"model: T5 d_model {c.d_model}, {c.num_layers}+{c.num_decoder_layers} blocks, vocab {c.vocab_size:,}: "
                f"{size:,} parameters\ncorpus: {self.source}: {len(data.train_chunks):,} chunks of "
                f"{data.train_chunks.shape[1]} tokens ({data.train_chunks.size:,} tokens), {len(data.eval_chunks):,} held out"
                + (f", {len(data.supervised):,} supervised pairs" if data.supervised else "")
                + f"\ntraining: {self.config.steps:,} steps × {self.config.batch_size} chunks"
                + (f" + {self.config.supervised_batch_size} supervised pairs" if self.config.supervised_batch_size else "")
                + f", lr {self.config.learning_rate:g}, warm-up {self.config.warmup_steps}, precision {self.config.precision}"
                + f"\noutput: {self.config.output_dir}")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    from runners.embedded import PRETRAINING

    options = dict(vars(args))
    if args.resume:
        saved_path = Path(args.resume) / ARGUMENTS_FILE
        if not saved_path.is_file():
            raise UsageError(f"--resume {args.resume}: no {ARGUMENTS_FILE} there; give the --output-dir of the interrupted run")
        try:
            saved = json.loads(saved_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise UsageError(f"{saved_path}: not a readable arguments file ({error})") from None
        for key, value in options.items():
            if value is not None and key not in RESUME_MAY_CHANGE and saved.get(key) != value:
                raise UsageError(f"--{key.replace('_', '-')} {value} differs from the interrupted run's ({saved.get(key)})")
        options = {**saved, **{k: v for k, v in options.items() if v is not None and k in RESUME_MAY_CHANGE}}
        options["resume"], options["output_dir"] = args.resume, args.resume
    embedded = not options.get("corpus") and not options.get("dataset")
    if embedded:
        for key, value in PRETRAINING.items():
            if key == "config" and options.get("model"):  # the embedded architecture sizes a new model only
                continue
            if options.get(key) is None:
                options[key] = value
    if options.get("corpus") and options.get("dataset"):
        raise UsageError("give --corpus or --dataset, not both")
    for name in POSITIVE:
        if options.get(name) is not None and options[name] < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {options[name]}")
    for name in ("noise_density", "held_out"):
        if options.get(name) is not None and not 0 < options[name] < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be between 0 and 1, got {options[name]}")
    if options.get("mean_span_length") is not None and not options["mean_span_length"] >= 1:
        raise UsageError(f"--mean-span-length must be at least 1, got {options['mean_span_length']}")
    if options.get("lr") is not None and not 0 < options["lr"] < float("inf"):
        raise UsageError(f"--lr must be a positive finite number, got {options['lr']}")
    if options.get("model") and options.get("config"):
        raise UsageError("--config sizes a new model; it cannot be combined with --model")
    if options.get("resume") and options.get("overwrite"):
        raise UsageError("--overwrite replaces an earlier run; --resume continues it: give one of them")
    options["output_dir"] = options.get("output_dir") or str(Path("runs") / time.strftime("pretrain-%Y%m%d-%H%M%S"))
    options["embedded"] = embedded
    if is_main_process():  # refused before the corpus is read; checked again once locked (claim_output_folder)
        folder = Path(options["output_dir"])
        check_output_path(folder)
        verdict, _ = folder_refusal(folder, RUNNER, overwrite=bool(options.get("overwrite")),
                                    resume=bool(options.get("resume")))
        if verdict is not None:
            raise UsageError(verdict)
    return options


def _tokenizer_origin(options: dict[str, Any]) -> tuple[str | None, str]:
    """(the tokenizer's name or folder, the option that gave it), None for the embedded tokenizer."""
    if options.get("tokenizer"):
        return options["tokenizer"], "--tokenizer"
    return options.get("model"), "--model"


def _tokenizer(options: dict[str, Any], documents: list[str]):
    """The tokenizer, refused when it cannot encode the corpus (most words unknown)."""
    from runners.finetune.model import ModelLoadError, check_tokenizer_covers, load_tokenizer

    name, option = _tokenizer_origin(options)
    try:
        tokenizer = load_tokenizer(name, option)  # None: the embedded tokenizer
        check_tokenizer_covers(tokenizer, documents, f"{option} {name}" if name else "the embedded tokenizer")
    except ModelLoadError as error:
        raise UsageError(str(error)) from None
    return tokenizer


def _check_vocabulary(vocab_size: int, tokenizer, where: str) -> None:
    """Every token id of the tokenizer needs an embedding row (else IndexError in the first step)."""
    if vocab_size < len(tokenizer):
        raise UsageError(f"{where}: vocab_size {vocab_size} is smaller than the tokenizer's {len(tokenizer)} tokens; "
                         f"give vocab_size at least {len(tokenizer)} (or leave it out: the tokenizer's size)")


def _model(options: dict[str, Any], tokenizer):
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    from runners.finetune.model import ModelLoadError, build_model, check_model_folder, parse_init_overrides

    try:
        if options.get("model"):
            check_model_folder(options["model"])
            model = build_model(options["model"], tokenizer, seed=options.get("seed") or 0)
            _check_vocabulary(model.config.vocab_size, tokenizer, f"--model {options['model']}")
            return model
        overrides = parse_init_overrides(options.get("config"))
    except ModelLoadError as error:
        raise UsageError(str(error).replace("--init-config", "--config")) from None
    torch.manual_seed(options.get("seed") or 0)
    fields = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id,
              "decoder_start_token_id": tokenizer.pad_token_id, **overrides}
    _check_vocabulary(fields["vocab_size"], tokenizer, f"--config vocab_size={fields['vocab_size']}")
    try:
        return T5ForConditionalGeneration(T5Config(**fields))
    except (ValueError, TypeError) as error:
        raise UsageError(f"--config: {error}") from None


def _apply_process_settings(options: dict[str, Any]) -> None:
    """--threads, and --no-progress for transformers' own bars too ("Writing model shards")."""
    import torch

    from runners.finetune.model import quiet_library_progress_bars

    if options.get("threads"):
        torch.set_num_threads(options["threads"])
    if options.get("no_progress"):
        quiet_library_progress_bars()


def prepare_run(args: argparse.Namespace) -> PretrainRun:
    """Check the arguments, read the corpus, build tokenizer, model, data and config."""
    options = _options(args)  # before the heavy imports: a usage error comes back at once
    from runners.embedded import CORPUS_FILE, SUPERVISED_FILE

    from .corpus import CorpusError, load_hub_documents, read_documents, read_supervised
    from .data import PretrainData
    from .loop import PretrainConfig

    _apply_process_settings(options)
    corpus = [str(CORPUS_FILE)] if options["embedded"] else options.get("corpus")
    supervised_paths = options.get("supervised") or ([str(SUPERVISED_FILE)] if options["embedded"] else None)
    try:
        if options.get("dataset"):
            documents = load_hub_documents(options["dataset"], options["dataset_split"], options["text_column"],
                                           options.get("max_documents"))
            source = f"--dataset {options['dataset']}"
        else:
            documents = read_documents(corpus, options["text_column"])
            source = ", ".join(corpus)
        if options.get("max_documents"):
            documents = documents[: options["max_documents"]]
        supervised = read_supervised(supervised_paths) if supervised_paths else []
    except CorpusError as error:
        raise UsageError(str(error)) from None
    tokenizer = _tokenizer(options, documents)
    model = _model(options, tokenizer)
    noise = {k: options[k] for k in ("noise_density", "mean_span_length") if options.get(k) is not None}
    try:
        data = PretrainData.build(documents, tokenizer, options.get("chunk_length") or 114,
                                  held_out=options.get("held_out") or 0.02, supervised=supervised, **noise)
    except ValueError as error:
        raise UsageError(f"corpus {source}: {error}") from None
    if options.get("supervised_batch_size") and not data.supervised:
        raise UsageError("--supervised-batch-size needs --supervised files")
    config = PretrainConfig(
        output_dir=options["output_dir"], steps=options.get("steps") or 4000, batch_size=options.get("batch_size") or 64,
        supervised_batch_size=(options.get("supervised_batch_size") or 0) if data.supervised else 0,
        learning_rate=options.get("lr") or 2e-3, warmup_steps=options["warmup_steps"] if options.get("warmup_steps") is not None else 200,
        eval_every=options.get("eval_every") or 500, save_every=options.get("save_every") or 500,
        log_every=options.get("log_every") or 10, seed=options.get("seed") or 0,
        precision=options.get("precision") or "auto", cpu=bool(options.get("cpu")), resume=bool(options.get("resume")),
        stop_after_steps=options.get("stop_after_steps"), progress_bars=not options.get("no_progress"))
    lock = None
    if is_main_process():  # under torchrun, process 0 locks and writes the folder (the others would see its file)
        lock = claim_output_folder(config.output_dir, RUNNER, overwrite=bool(options.get("overwrite")),
                                   resume=bool(options.get("resume")))
        saved = {k: v for k, v in options.items() if k not in ("resume", "stop_after_steps", "embedded", "overwrite")}
        try:
            write_json(Path(config.output_dir) / ARGUMENTS_FILE, saved)
        except OSError as error:
            lock.release()
            raise UsageError(f"--output-dir {config.output_dir}: cannot write there ({error.strerror or error})") from None
    return PretrainRun(model, tokenizer, data, config, source, lock)


def is_main_process() -> bool:
    """Process 0 of a torchrun / accelerate launch (whose RANK says so), or a process on its own."""
    return os.environ.get("RANK", "0") == "0"
