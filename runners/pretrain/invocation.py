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


ARGUMENTS_FILE = "arguments.json"
EXIT_USAGE, EXIT_INTERRUPTED = 2, 130
RESUME_MAY_CHANGE = {"resume", "stop_after_steps", "no_progress", "log_every", "threads"}
POSITIVE = ("steps", "batch_size", "chunk_length", "eval_every", "save_every", "log_every", "threads",
            "max_documents", "stop_after_steps")


class UsageError(Exception):
    """A problem with the command line or the corpus: printed as one line, exit 2."""


@dataclass
class PretrainRun:
    model: Any
    tokenizer: Any
    data: Any
    config: Any
    source: str

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
    options["output_dir"] = options.get("output_dir") or str(Path("runs") / time.strftime("pretrain-%Y%m%d-%H%M%S"))
    options["embedded"] = embedded
    return options


def _tokenizer(options: dict[str, Any]):
    from runners.finetune.model import ModelLoadError, load_tokenizer

    name = options.get("tokenizer") or options.get("model")
    try:
        return load_tokenizer(name)  # None: the embedded tokenizer
    except ModelLoadError as error:
        raise UsageError(str(error)) from None


def _model(options: dict[str, Any], tokenizer):
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    from runners.finetune.model import ModelLoadError, build_model, parse_init_overrides

    try:
        if options.get("model"):
            return build_model(options["model"], tokenizer, seed=options.get("seed") or 0)
        overrides = parse_init_overrides(options.get("config"))
    except ModelLoadError as error:
        raise UsageError(str(error)) from None
    torch.manual_seed(options.get("seed") or 0)
    fields = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id,
              "decoder_start_token_id": tokenizer.pad_token_id, **overrides}
    try:
        return T5ForConditionalGeneration(T5Config(**fields))
    except (ValueError, TypeError) as error:
        raise UsageError(f"--config: {error}") from None


def prepare_run(args: argparse.Namespace) -> PretrainRun:
    """Check the arguments, read the corpus, build tokenizer, model, data and config."""
    options = _options(args)  # before the heavy imports: a usage error comes back at once
    import torch

    from runners.embedded import CORPUS_FILE, SUPERVISED_FILE

    from .corpus import CorpusError, load_hub_documents, read_documents, read_supervised
    from .data import PretrainData
    from .loop import PretrainConfig

    if options.get("threads"):
        torch.set_num_threads(options["threads"])
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
    tokenizer = _tokenizer(options)
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
    folder = Path(config.output_dir)
    if is_main_process():  # under torchrun, process 0 checks and writes the folder (the others would see its file)
        if not options.get("resume") and (folder / ARGUMENTS_FILE).exists():
            raise UsageError(f"--output-dir {folder} holds an earlier run; continue it with --resume {folder} "
                             "or choose another folder")
        folder.mkdir(parents=True, exist_ok=True)
        saved = {k: v for k, v in options.items() if k not in ("resume", "stop_after_steps", "embedded")}
        (folder / ARGUMENTS_FILE).write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
    return PretrainRun(model, tokenizer, data, config, source)


def is_main_process() -> bool:
    """Process 0 of a torchrun / accelerate launch (whose RANK says so), or a process on its own."""
    return os.environ.get("RANK", "0") == "0"
