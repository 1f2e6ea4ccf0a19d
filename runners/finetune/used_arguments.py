"""What ``arguments.json`` records: the value every option actually had, defaults included.

An option left out is written with the value the runs used: the task and recipe names, the seeds,
the model's folder, the paper's (or the embedded tasks') epochs, batch, learning rate, ... A
setting that differs between runs (the learning rate of two recipes) is written per run, as
``{"<task>/<recipe>": value}``; a feature not in use is ``false`` (``low_resource``, ``max_train``),
a list option not given ``[]``. The names of the options that were left out go in ``"defaults"``,
so ``--resume`` gives them back as left out (and fills them in again the same way).

>>> fill_defaults({"epochs": None, "cpu": None, "set": None, "seed": 3}, {"epochs": 10})
{'epochs': 10, 'cpu': False, 'set': [], 'seed': 3, 'defaults': ['cpu', 'epochs', 'set']}
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .arguments import FLAGS

__all__ = ["DEFAULTS_KEY", "fill_defaults", "run_values", "used_arguments", "given_options"]

DEFAULTS_KEY = "defaults"
NOT_SAVED = ("resume", "overwrite", "stop_after_steps")  # of this process only: never in arguments.json
LISTS = ("init_config", "set", "sweep")
# Options whose default is "not used": recorded as false when left out.
OFF = ("low_resource", "max_train", "stop_after_steps", "save_every_steps", "resume", "test_file", "data_dir",
       "train_file", "validation_file", "text_column", "label_column", "task_type")
# Per-run settings (TrainConfig's field for each option).
PER_RUN = {"epochs": "epochs", "batch_size": "batch_size", "grad_accum": "grad_accum", "lr": "learning_rate",
           "warmup_steps": "warmup_steps", "max_source_length": "max_source_length",
           "max_target_length": "max_target_length", "dropout": "dropout", "group_by_length": "group_by_length",
           "eval_every": "eval_every", "log_every": "log_every"}


def fill_defaults(options: dict[str, Any], used: dict[str, Any]) -> dict[str, Any]:
    """`options` with each None replaced: by `used`'s value, else false / [] for an option not in use."""
    filled: dict[str, Any] = {}
    defaults = []
    for key, value in options.items():
        if value is None and key != DEFAULTS_KEY:
            defaults.append(key)
            value = used[key] if key in used else [] if key in LISTS else False if key in (*FLAGS, *OFF) else None
            if value is None:
                continue  # nothing to say (e.g. --seed when --seeds holds them): left out, not null
        filled[key] = value
    return {**filled, DEFAULTS_KEY: sorted(defaults)}


def given_options(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved arguments.json back as the options given: the filled-in defaults left out again."""
    defaults = saved.get(DEFAULTS_KEY) or []
    given = {key: value for key, value in saved.items() if key != DEFAULTS_KEY}
    return {**given, **{key: None for key in defaults if isinstance(key, str)}}


def run_values(configs: dict[str, Any], model_dropout: float | None) -> dict[str, Any]:
    """Per option, the TrainConfig value of every run: one value, or ``{run: value}`` where runs differ."""
    values: dict[str, Any] = {}
    for option, field in PER_RUN.items():
        per_run = {run: getattr(config, field) for run, config in configs.items()}
        if field == "dropout":
            per_run = {run: model_dropout if value is None else value for run, value in per_run.items()}
        distinct = {repr(value) for value in per_run.values()}
        values[option] = next(iter(per_run.values())) if len(distinct) == 1 else per_run
    return values


def used_arguments(settings, jobs: list, tasks_by_name: dict[str, Any], architecture, world: int,
                   train_config: Callable[..., tuple[Any, str]], threads: int | None) -> dict[str, Any]:
    """arguments.json for this invocation: every option with the value its runs use."""
    import surgery

    from .library_baselines import DEFAULT_LORA_RANK, is_library_baseline
    from .model import embedded_model_dir

    options = settings.options
    configs = {}
    for job in jobs:
        recipe = job.recipe if is_library_baseline(job.recipe) else surgery.plan(architecture, job.recipe).recipe
        config, _ = train_config(options, tasks_by_name[job.task_name], Path("."), job.seed, None,
                                 recipe=recipe, model_config=architecture.config,
                                 setting_lr=job.setting.learning_rate)
        configs[job.run_dir(Path(".")).parent.as_posix()] = config
    used = run_values(configs, getattr(architecture.config, "dropout_rate", None)) if configs else {}
    if configs:
        batches = {math.ceil(c.batch_size / (world * c.grad_accum)) for c in configs.values()}
        used["eval_batch_size"] = batches.pop() if len(batches) == 1 else "the training micro-batch of each run"
    used["generation_max_length"] = "each run's longest training target + 2 tokens, at most max_target_length"
    used["task"] = ",".join(settings.tasks)
    used["recipe"] = ",".join(dict.fromkeys(job.recipe_name for job in jobs))
    used["seeds"] = list(settings.seeds)
    used["split_seed"] = 42
    if any(is_library_baseline(job.recipe) for job in jobs):
        used["lora_rank"] = DEFAULT_LORA_RANK
    used["model"] = ("none: a random-init T5 sized by --init-config" if options.get("init_config")
                     else embedded_model_dir())
    used["precision"] = "auto"
    used["jobs"] = min(options.get("jobs") or 1, max(1, len(jobs)))
    if threads is not None:
        used["threads"] = threads
    if options.get("train_file") is not None:
        own = next(iter(tasks_by_name.values()))
        used["task_type"] = own.task_type
    return fill_defaults({key: value for key, value in options.items() if key not in NOT_SAVED}, used)
