"""Every option of `runners.finetune` checked before any work starts (exit 2, one line naming it).

The same checks run on a resumed invocation's saved options (``arguments.json`` may have been
edited), so a value reaches the training code only if it is of the right type and in range.

>>> check_options({"seed": -5})
Traceback (most recent call last):
...
runners.errors.UsageError: --seed -5: a seed is an integer in [0, 2147483647]
>>> check_options({"lr": float("inf")})
Traceback (most recent call last):
...
runners.errors.UsageError: --lr inf: give a finite learning rate > 0
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

from runners.tasks.registry import TASK_TYPE_OF_TARGET

from .errors import UsageError

# Counts, lengths and sizes fit in 32 bits; seeds too (numpy's seed is 32-bit, and a process's
# seed is seed + rank).
INT_LIMIT = 2**31 - 1
POSITIVE = ("epochs", "batch_size", "grad_accum", "max_source_length", "max_target_length", "eval_every",
            "eval_batch_size", "log_every", "stop_after_steps", "save_every_steps", "max_train",
            "generation_max_length", "low_resource", "lora_rank")
MAX_THREADS = 4096
SEEDS = ("seed", "split_seed")
FLAGS = ("cpu", "overwrite", "no_progress", "gradient_checkpointing", "paper_search", "train_output_layer", "one_base",
         "random_init", "group_by_length")
TEXTS = ("task", "recipe", "model", "data_dir", "output_dir", "resume", "train_file", "validation_file", "test_file",
         "text_column", "label_column")
TASK_TYPES = tuple(TASK_TYPE_OF_TARGET.values())  # classification, regression, generation
PRECISIONS = ("auto", "no", "bf16", "fp16")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_options(options: dict[str, Any]) -> None:
    """Raise UsageError for the first option of the wrong type or out of range."""
    for name in POSITIVE:
        value = options.get(name)
        if value is not None and (not _is_int(value) or not 1 <= value <= INT_LIMIT):
            raise UsageError(f"{flag(name)} {value}: give a whole number in [1, {INT_LIMIT}]")
    for name in ("threads", "jobs"):
        value = options.get(name)
        if value is not None and (not _is_int(value) or not 1 <= value <= MAX_THREADS):
            raise UsageError(f"{flag(name)} {value}: give a whole number in [1, {MAX_THREADS}]")
    warmup = options.get("warmup_steps")
    if warmup is not None and (not _is_int(warmup) or not 0 <= warmup <= INT_LIMIT):
        raise UsageError(f"--warmup-steps {warmup}: give a whole number in [0, {INT_LIMIT}]")
    for name in SEEDS:
        if options.get(name) is not None:
            _check_seed(flag(name), options[name])
    seeds = options.get("seeds")
    if seeds is not None:
        if not isinstance(seeds, list) or not seeds:
            raise UsageError(f"--seeds {seeds}: give one or more seeds")
        for seed in seeds:
            _check_seed("--seeds", seed)
    lr = options.get("lr")
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0):
        raise UsageError(f"--lr {lr}: give a finite learning rate > 0")
    dropout = options.get("dropout")
    if dropout is not None and (isinstance(dropout, bool) or not isinstance(dropout, (int, float))
                                or not 0 <= dropout < 1):
        raise UsageError(f"--dropout {dropout}: give a probability in [0, 1)")
    precision = options.get("precision")
    if precision is not None and precision not in PRECISIONS:
        raise UsageError(f"--precision {precision}: choose one of {', '.join(PRECISIONS)}")
    task_type = options.get("task_type")
    if task_type is not None and task_type not in TASK_TYPES:
        raise UsageError(f"--task-type {task_type}: choose one of {', '.join(TASK_TYPES)}")
    for name in FLAGS:
        if options.get(name) not in (None, True, False):
            raise UsageError(f"{flag(name)} {options[name]!r}: a flag is true or false")
    for name in TEXTS:
        value = options.get(name)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise UsageError(f"{flag(name)} {value!r}: give a non-empty {'name' if name in ('task', 'recipe') else 'path'}")
    for name in ("task", "recipe"):
        if options.get(name) is not None:
            comma_list(flag(name), options[name])
    for name in ("init_config", "set", "sweep"):
        items = options.get(name)
        if items is not None and (not isinstance(items, list) or not all(isinstance(item, str) for item in items)):
            raise UsageError(f"{flag(name)} {items!r}: give KEY=VALUE items")
    if options.get("data_dir") is not None and not Path(options["data_dir"]).is_dir():
        raise UsageError(f"--data-dir {options['data_dir']}: no such folder")
    check_own_data(options)


OWN_DATA = ("validation_file", "test_file", "text_column", "label_column", "task_type")


def check_own_data(options: dict[str, Any]) -> None:
    """--train-file needs --validation-file, --text-column and --label-column, one task name and no --data-dir."""
    if options.get("train_file") is None:
        given = [name for name in OWN_DATA if options.get(name) is not None]
        if given:
            raise UsageError(f"{flag(given[0])} is for your own data: give --train-file too")
        return
    for name in ("validation_file", "text_column", "label_column"):
        if options.get(name) is None:
            raise UsageError(f"--train-file needs {flag(name)} too")
    if options.get("data_dir") is not None:
        raise UsageError("give --train-file/--validation-file or --data-dir, not both")
    columns = comma_list("--text-column", options["text_column"])
    if len(columns) > 2:
        raise UsageError(f"--text-column {options['text_column']!r}: give one or two columns")
    name = options.get("task")
    if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise UsageError(f"--task {name!r}: with --train-file, --task names your task (one name of letters, digits, "
                         "'_', '.', '-'; it becomes the folder and the input's first word)")


def _check_seed(name: str, value: Any) -> None:
    if not _is_int(value) or not 0 <= value <= INT_LIMIT:
        raise UsageError(f"{name} {value}: a seed is an integer in [0, {INT_LIMIT}]")


def comma_list(name: str, text: str) -> list[str]:
    """'rte, cola' → ['rte', 'cola']; an empty item (',,' or a trailing comma) is an error.

    >>> comma_list("--task", "rte, cola")
    ['rte', 'cola']
    """
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise UsageError(f"{name} {text!r}: an empty name between commas")
    return items


def check_output_dir(folder: Path) -> None:
    """The output folder can be created and written: no file in the way, the nearest folder writable."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--output-dir {folder} is a file; give a folder")
    existing = next(p for p in (folder, *folder.parents) if p.exists() or p == Path(p.anchor))
    if not existing.is_dir():
        raise UsageError(f"--output-dir {folder}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--output-dir {folder}: {existing} is not writable")
