"""An invocation of `runners.finetune`, resolved: its options merged, checked and completed.

* :func:`resolve_settings` — a resumed invocation gets its saved options back (changing one that
  affects the result is refused), seeds and the output folder are filled in, numbers checked;
* :func:`prepare_output_dir` — the folder is created and the options saved in ``arguments.json``,
  refusing to mix two invocations in one folder.

>>> import argparse
>>> settings = resolve_settings(argparse.Namespace(task="rte,cola", recipe=None, seed=None, seeds=None,
...                             low_resource=500, epochs=None, output_dir="runs/x", resume=None))
>>> settings.tasks, settings.seeds
(['rte', 'cola'], [42, 43, 44, 45, 46])
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXIT_USAGE, EXIT_OUT_OF_MEMORY, EXIT_INTERRUPTED = 2, 3, 130
ARGUMENTS_FILE = "arguments.json"
# Options a resumed invocation may set differently from the interrupted one: they change neither
# the data, the model nor the arithmetic of training.
RESUME_MAY_CHANGE = {"resume", "stop_after_steps", "save_every_steps", "no_progress", "log_every", "overwrite"}


class UsageError(Exception):
    """A problem with the command line, data, model or recipe: printed without a traceback, exit 2."""


@dataclass
class Settings:
    """The resolved command line: every option has its value."""

    tasks: list[str]
    recipes: list[str] | None      # None: the per-task default
    seeds: list[int]
    output_dir: Path
    options: dict[str, Any]        # the parsed namespace, after merging a resumed run's


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def say(message: str = "") -> None:
    if is_main_process():
        print(message, flush=True)


def resolve_settings(args: argparse.Namespace) -> Settings:
    """Merge a resumed run's saved arguments, check them, and fill in seeds and the output folder."""
    from .settings import LOW_RESOURCE_EPOCHS

    options = {key: value for key, value in vars(args).items()}
    if args.resume:
        folder = Path(args.resume)
        saved_path = next((p / ARGUMENTS_FILE for p in (folder, *folder.parents) if (p / ARGUMENTS_FILE).is_file()), None)
        if saved_path is None:
            raise UsageError(f"--resume {folder}: no {ARGUMENTS_FILE} in it or above it; give the --output-dir of "
                             "the interrupted invocation")
        saved = json.loads(saved_path.read_text())
        for key, value in options.items():
            if value is not None and key not in RESUME_MAY_CHANGE and saved.get(key) != value:
                raise UsageError(f"--{key.replace('_', '-')} {value} differs from the interrupted run's "
                                 f"({saved.get(key)}); a resumed run keeps its settings (leave the option out)")
        options = {**saved, **{k: v for k, v in options.items() if v is not None and k in RESUME_MAY_CHANGE}}
        options["resume"] = str(saved_path.parent)
        options["output_dir"] = str(saved_path.parent)
    if options.get("seed") is not None and options.get("seeds"):
        raise UsageError("give --seed or --seeds, not both")
    low_resource = options.get("low_resource")
    if low_resource is not None:
        if low_resource < 1:
            raise UsageError(f"--low-resource {low_resource}: give a positive number of training examples")
        if options.get("epochs") is None and low_resource not in LOW_RESOURCE_EPOCHS:
            raise UsageError(f"--low-resource {low_resource}: the paper's schedule covers "
                             f"{', '.join(map(str, LOW_RESOURCE_EPOCHS))} examples; give --epochs for other sizes")
        if options.get("max_train") is not None:
            raise UsageError("give --low-resource or --max-train, not both")
    seeds = options.get("seeds") or ([options["seed"]] if options.get("seed") is not None else
                                     [42, 43, 44, 45, 46] if low_resource is not None else [42])
    for name in ("epochs", "batch_size", "grad_accum", "max_source_length", "max_target_length", "eval_every",
                 "eval_batch_size", "log_every", "stop_after_steps", "save_every_steps", "max_train",
                 "generation_max_length", "threads"):
        value = options.get(name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if options.get("warmup_steps") is not None and options["warmup_steps"] < 0:
        raise UsageError(f"--warmup-steps must be 0 or more, got {options['warmup_steps']}")
    if options.get("lr") is not None and not options["lr"] > 0:
        raise UsageError(f"--lr must be positive, got {options['lr']}")
    output_dir = Path(options.get("output_dir") or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
    options["output_dir"] = str(output_dir)
    tasks = [t.strip() for t in (options.get("task") or "embedded").split(",") if t.strip()]
    recipes = [r.strip() for r in options["recipe"].split(",") if r.strip()] if options.get("recipe") else None
    return Settings(tasks, recipes, seeds, output_dir, options)


def prepare_output_dir(settings: Settings, barrier: Callable[[], None] = lambda: None) -> None:
    """Create the output folder and save the options; refuse to mix with an earlier invocation.

    Every process calls this; `barrier()` makes all of them check before the main one writes.
    """
    folder, options = settings.output_dir, settings.options
    replace = False
    if not options.get("resume") and (folder / ARGUMENTS_FILE).exists():
        if not options.get("overwrite"):
            raise UsageError(f"--output-dir {folder} holds an earlier invocation; continue it with --resume {folder}, "
                             "replace it with --overwrite, or choose another folder")
        replace = True
    barrier()
    if is_main_process():
        if replace:
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        saved = {k: v for k, v in options.items() if k not in ("resume", "overwrite", "stop_after_steps")}
        (folder / ARGUMENTS_FILE).write_text(json.dumps(saved, indent=2) + "\n")
    barrier()
