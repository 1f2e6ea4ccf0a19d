"""One invocation of `runners.finetune`: every (task × recipe × seed) run, then the results table.

    run_all(settings)
      ├─ preflight          tasks exist, the model fits in memory, recipes fit the model, data loads
      ├─ plan_jobs          one run per distinct (task, recipe content, setting, seed); folders never clash
      ├─ prepare_output_dir the folder locked (one process at a time), arguments.json written
      ├─ per run: run_one
      │    ├─ run.json        which run the folder holds: never another
      │    ├─ finished earlier (result.json)?  reuse it      (an invocation resumed with --resume)
      │    ├─ diverged earlier (diverged.json)?  listed again, not retrained
      │    ├─ recover last/ and best/ from an interrupted write, if any (and say so)
      │    ├─ build the model with the seed, surgery.apply(recipe)   (adapt; --recipe peft-lora: PEFT's LoRA)
      │    ├─ training.train(...)  — resumed from last/ when there is one
      │    └─ result.json, or diverged.json when the loss or gradient norm became NaN/inf
      └─ report_outcomes    results.md / results.csv (diverged runs listed under them), printed; the exit code

Errors a user can fix (unknown task, bad data file, recipe that does not fit, model that cannot
be loaded, a damaged checkpoint, runs whose loss became NaN) become `UsageError`, which
`runners.finetune` prints on one line without a traceback (exit 2).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import torch

import surgery
from surgery.family_registry import detect_family
from runners.threads import choose_threads

from .atomic import write_json
from .errors import NonFiniteLoss, TrainingSetupError
from .invocation import DEFAULT_RECIPE, Say, Settings, UsageError, prepare_output_dir
from .jobs import Job, plan_jobs
from .library_baselines import apply_baseline, is_library_baseline
from .run_folders import unique
from .outcomes import report_outcomes, stopped_by_signal
from .parallel import run_in_processes, stop_further_calls
from .jsonl_log import JsonlLog
from .results import DIVERGED_FILE, RESULT_FILE, DivergedRun, RunResult
from .model_kind import kind_of_model
from .model import (ModelLoadError, build_model, check_model_folder, configured_for, embedded_model_dir,
                    family_and_kind_of, load_config, load_tokenizer, parse_init_overrides, tiny_t5_config,
                    quiet_library_progress_bars, tokenizer_folder)
from .protocol import SMALL_MODEL_CPU_THREADS, paper_defaults
from .run_lines import describe_model, describe_training
from .state import resume_point
from .used_arguments import used_arguments
from .task_data import load_data, resolve_tasks, run_task_record, task_named, write_task_record
from .training import TrainConfig, make_accelerator, train
from .finish import finish_run

RUN_FILE = "run.json"



@contextmanager
def usage_errors(context: str = ""):
    """Turn the errors a user can fix into UsageError (printed without a traceback)."""
    from runners.tasks.data import DataError

    try:
        yield
    except (DataError, ModelLoadError, TrainingSetupError, NonFiniteLoss, surgery.SurgeryError) as error:
        raise UsageError(f"{context}{error}") from None


def recipe_names(settings: Settings, task) -> list[str]:
    if settings.recipes:
        return settings.recipes
    return [DEFAULT_RECIPE]


def training_device(options: dict[str, Any]) -> torch.device:
    """Where the runs will allocate (for the plans' size bound): the GPU unless --cpu or none."""
    return torch.device("cuda" if torch.cuda.is_available() and not options.get("cpu") else "cpu")


def check_model_fits(architecture: torch.nn.Module, device: torch.device, model_name: str | None) -> None:
    """The model itself must fit in memory (a huge --init-config would fail deep in torch)."""
    from surgery.budget import format_bytes, free_bytes

    size = sum(p.numel() * 4 for p in architecture.parameters())  # built in float32
    available = free_bytes(device)
    if available is not None and size > available:
        origin = f"--model {model_name}" if model_name else "--init-config"
        raise UsageError(f"{origin}: the model needs {format_bytes(size)}, more than the {format_bytes(available)} "
                         f"free on {device}")


def meta_model(model_name: str | None, tokenizer, overrides: dict[str, Any], task=None) -> torch.nn.Module:
    """The model's architecture without weights (for checking recipes before any training), in the class of
    its kind (a classifier sized for `task`'s labels)."""
    import transformers

    with usage_errors():
        if overrides:
            config = tiny_t5_config(tokenizer, overrides)
            auto_class = transformers.T5ForConditionalGeneration
        else:
            path = model_name if model_name is not None else embedded_model_dir()
            config = load_config(path)
            _, kind = family_and_kind_of(config, f"--model {path}")
            auto_class = getattr(transformers, kind.auto_class)
            config = configured_for(config, kind, task)
        with torch.device("meta"):
            model = auto_class(config) if overrides else auto_class.from_config(config)
    model.tie_weights()  # transformers 5.0 leaves a model built on the meta device untied (the real one is tied)
    return model


def train_config(options: dict[str, Any], task, run_dir: Path, seed: int, resume_from: Path | None,
                 *, recipe, model_config=None, setting_lr: float | None = None,
                 say: Say | None = None) -> tuple[TrainConfig, str]:
    """The TrainConfig of one run, and where its learning rate came from.

    Defaults are the paper's protocol for (task, `recipe`, model size from `model_config`); the
    options given on the command line win, and a --sweep/--set learning rate (`setting_lr`) wins
    over --lr (`runners.finetune.protocol` holds every default rate). Notes on settings the paper
    did not run go to `say`.
    """
    defaults = paper_defaults(task, recipe, model_config, options.get("low_resource"),
                              embedded_model=options.get("model") is None and not options.get("init_config"))
    for note in defaults.get("notes", []):
        if say is not None:
            say(note)

    def pick(name: str, fallback: Any = None) -> Any:
        value = options.get(name)
        return defaults.get(name, fallback) if value is None else value

    if setting_lr is not None:
        learning_rate, lr_source = setting_lr, "--sweep/--set lr"
    elif options.get("lr") is not None:
        learning_rate, lr_source = options["lr"], "--lr"
    else:
        learning_rate, lr_source = defaults["learning_rate"], defaults["sources"]["learning_rate"]
    config = TrainConfig(
        output_dir=run_dir, epochs=pick("epochs"), batch_size=pick("batch_size"), grad_accum=options.get("grad_accum") or 1,
        learning_rate=learning_rate, warmup_steps=pick("warmup_steps"), max_source_length=pick("max_source_length"),
        max_target_length=pick("max_target_length"), generation_max_length=options.get("generation_max_length"),
        eval_batch_size=options.get("eval_batch_size"), eval_every=pick("eval_every", 1),
        log_every=options.get("log_every") or 10, seed=seed, precision=options.get("precision") or "auto",
        cpu=bool(options.get("cpu")), resume_from=resume_from, stop_after_steps=options.get("stop_after_steps"),
        save_every_steps=options.get("save_every_steps"), progress_bars=not options.get("no_progress"),
        gradient_checkpointing=bool(options.get("gradient_checkpointing")), dropout=pick("dropout"),
        group_by_length=bool(pick("group_by_length", False)),
    )
    return config, lr_source


def claim_run_folder(run_dir: Path, job: Job, resumed: bool, is_main: bool) -> None:
    """Record which run `run_dir` holds; refuse a folder that holds another run."""
    import json

    path = run_dir / RUN_FILE
    if path.is_file():
        try:
            held = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            held = None
        if held != job.identity():
            changed = "its recipe changed since the interrupted run" if resumed else "it holds another run"
            raise UsageError(f"{run_dir}: {changed} ({RUN_FILE} records {held}); a folder holds one run — "
                             "start a new --output-dir for the new recipe")
    elif is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(path, job.identity())


def run_one(task, job: Job, base_splits: dict[str, list[dict]], tokenizer, settings: Settings,
            accelerator, say: Say, label: str) -> tuple[RunResult | DivergedRun | None, str | None]:
    """Train one job (task, recipe with its setting, seed): (result, None); (DivergedRun, None) when its
    loss or gradient norm became non-finite (recorded in its folder; the other runs go on); or (None,
    why it stopped) with a resumable checkpoint."""
    from runners.tasks.data import subsample

    options = settings.options
    recipe, recipe_name, seed, setting = job.recipe, job.recipe_name, job.seed, job.setting
    run_dir = job.run_dir(settings.output_dir)
    resumed = bool(options.get("resume"))
    claim_run_folder(run_dir, job, resumed, accelerator.is_main_process)
    if resumed and (run_dir / RESULT_FILE).is_file():
        say(f"{label}: finished earlier, result from {run_dir / RESULT_FILE}")
        return RunResult.load(run_dir / RESULT_FILE), None
    if resumed and (run_dir / DIVERGED_FILE).is_file():  # the same data, seed and rate would diverge again
        diverged = DivergedRun.load(run_dir / DIVERGED_FILE)
        say(f"{label}: diverged earlier ({diverged.reason}); not trained again")
        return diverged, None
    resume_from = resume_point(run_dir, accelerator, say) if resumed else None

    train_examples = options.get("low_resource") or options.get("max_train")
    splits = dict(base_splits)
    if train_examples is not None and train_examples > len(base_splits["train"]):
        option = "--low-resource" if options.get("low_resource") else "--max-train"
        say(f"note: {option} {train_examples:,} is more than the {len(base_splits['train']):,} training rows; "
            "using all of them")
    elif train_examples is not None:
        with usage_errors():
            splits["train"] = subsample(base_splits["train"], train_examples, seed)
    if options.get("no_progress"):
        quiet_library_progress_bars()
    model = build_model(options.get("model"), tokenizer, parse_init_overrides(options.get("init_config")), seed=seed,
                        random_init=bool(options.get("random_init")), task=task)
    with usage_errors(f"recipe {recipe_name!r}: "):
        model, report, protocol_recipe = adapt(model, recipe, options)
    config, lr_source = train_config(options, task, run_dir, seed, resume_from,
                                     recipe=protocol_recipe,
                                     model_config=model.config, setting_lr=setting.learning_rate, say=say)
    with_setting = f" [{setting.label}]" if setting.label else ""
    say(f"\n=== {label}: task {task.name} · recipe {recipe_name}{with_setting} · seed {seed} ===")
    say(describe_model(model, options))
    say(f"data: {len(splits['train']):,} train / {len(splits['validation']):,} validation / {len(splits['test']):,} test rows")
    say(str(report))
    say(describe_training(config, lr_source, accelerator))
    say(f"output: {run_dir}")
    return train_and_finish(model, tokenizer, task, job, splits, config, report, run_dir, settings, accelerator, say)


def train_and_finish(model, tokenizer, task, job: Job, splits: dict[str, list[dict]], config: TrainConfig, report,
                     run_dir: Path, settings: Settings, accelerator, say: Say,
                     setting: str | None = None) -> tuple[RunResult | DivergedRun | None, str | None]:
    """Record the task, train, and finish the run (`finish_run`): (result, None); (DivergedRun, None),
    also written to the run's folder, when the loss or gradient norm became non-finite; or (None, why
    it stopped) with the command that continues it. One path for a run on its own base and for an
    adapter trained on the shared base of ``--one-base``."""
    config.task_record = run_task_record(task, config, settings.options, job.seed, job.recipe_name,
                                         precision=str(accelerator.mixed_precision))
    if accelerator.is_main_process:
        write_task_record(run_dir, config.task_record)
    with usage_errors(f"run {run_dir.relative_to(settings.output_dir).as_posix()}: "):
        try:
            outcome = train(model, tokenizer, task, splits, config, accelerator=accelerator,
                            log=JsonlLog(run_dir / "log.jsonl", enabled=accelerator.is_main_process))
        except NonFiniteLoss as error:
            diverged = DivergedRun(task.name, job.row_label, job.seed, str(error),
                                   job.setting.label if setting is None else setting)
            if accelerator.is_main_process:
                diverged.save(run_dir)
            say(f"diverged: {error}")
            return diverged, None
    if not outcome.completed:
        say(f"stopped ({outcome.stop_reason}) after {outcome.progress.global_step} steps. Continue exactly with:\n"
            f"  python -m runners.finetune --resume {settings.output_dir}")
        return None, outcome.stop_reason
    return finish_run(task, job, splits, config, report, outcome, run_dir, accelerator, say, setting), None


def adapt(model: torch.nn.Module, recipe: dict[str, Any], options: dict[str, Any]) -> tuple[torch.nn.Module, Any, Any]:
    """The job's recipe applied to `model`: (the model to train, its trainable-parameter report, what the
    protocol reads the learning rate from). A library baseline (--recipe peft-lora) is another library's
    adaptation, built by `runners.finetune.library_baselines`; every other recipe is the engine's."""
    if is_library_baseline(recipe):
        dropout = options.get("dropout")
        own = getattr(model.config, "dropout_rate", 0.0)  # LoRA's dropout is the protocol's, as set_dropout sets it
        trained, report = apply_baseline(model, recipe, own if dropout is None else dropout)
        return trained, report, recipe
    report = surgery.report(surgery.apply(model, recipe))
    return model, report, surgery.plan_of(model).recipe


def shipped_or_tiny(options: dict[str, Any]) -> bool:
    """Whether the run trains a small model of this project's: the default (world 1's embedded T5, no
    --model), a shipped model some task is written for (world 2's), or an --init-config one. An
    explicit --model naming world 1's folder counts as a user's model."""
    from runners.tasks import TASKS

    model = options.get("model")
    shipped = {task.model_dir.resolve() for task in TASKS.values() if task.model_dir is not None}
    return model is None or Path(model).resolve() in shipped


def invocation_accelerator(options: dict[str, Any]):
    """The Accelerator of --precision and --cpu; a precision it cannot use is a usage error (exit 2)."""
    try:
        return make_accelerator(options.get("precision") or "auto", bool(options.get("cpu")))
    except ValueError as error:
        raise UsageError(str(error)) from None


def set_cpu_threads(options: dict[str, Any], device: torch.device) -> int:
    """--threads, or on CPU (unless OMP_NUM_THREADS is set): 1 for the tiny --init-config models, for the
    shipped embedded models (world 1's, world 2's) one per core free now, at most SMALL_MODEL_CPU_THREADS
    (`runners.threads`).
    Returns the number of intra-op threads in effect."""
    threads = options.get("threads")
    if threads is None and shipped_or_tiny(options) and device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        threads = 1 if options.get("init_config") else choose_threads(SMALL_MODEL_CPU_THREADS)
    if threads is not None:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def threads_of_each_worker(options: dict[str, Any]) -> int:
    """The intra-op threads of each run of --jobs: --threads, else 1 (small runs side by side fill the cores)."""
    return options.get("threads") or 1


@dataclass
class Preflight:
    """What every invocation checks before anything is written: its tasks, tokenizer, the model's
    architecture (on meta), the device, every run planned against them, and the notes to print."""

    tasks: list[Any]
    tokenizer: Any
    overrides: dict[str, Any]
    architecture: torch.nn.Module
    device: torch.device
    jobs: list[Job]
    notes: list[str]


def preflight(settings: Settings) -> Preflight:
    """Tasks exist, seeds once each, the model loads and fits, every recipe fits it (UsageError otherwise)."""
    options = settings.options
    notes: list[str] = []
    given = resolve_tasks(settings.tasks, options, notes)  # one's own files read and checked before any model loads
    tasks = unique(given, key=lambda task: task.name, what="--task", notes=notes)
    settings.seeds = unique([(str(seed), seed) for seed in settings.seeds], key=lambda seed: seed, what="--seeds",
                            notes=notes)
    with usage_errors():
        tokenizer = load_tokenizer(tokenizer_folder(options, [task.model_dir for task in tasks]))
        check_model_folder(options.get("model"), weights=not options.get("random_init"), any_family=True)
        overrides = parse_init_overrides(options.get("init_config"))
    if overrides and (options.get("model") is not None or options.get("random_init")):
        raise UsageError("--init-config sizes a random-init model; it cannot be combined with --model or --random-init")
    architecture = meta_model(options.get("model"), tokenizer, overrides, task=tasks[0] if tasks else None)
    with usage_errors(f"--model {options.get('model')}: "):
        for task in tasks:  # a task the model's kind cannot learn (free text for a classifier)
            kind_of_model(architecture).check_task(task, detect_family(architecture).name)
    device = training_device(options)
    check_model_fits(architecture, device, options.get("model"))
    jobs = plan_jobs(settings, tasks, architecture, {task.name: recipe_names(settings, task) for task in tasks},
                     device=device, notes=notes)
    return Preflight(tasks, tokenizer, overrides, architecture, device, jobs, notes)


def run_all(settings: Settings, say: Say) -> int:
    """Every run of the invocation; returns the exit code."""
    options = settings.options
    checked = preflight(settings)
    tasks, tokenizer, jobs = checked.tasks, checked.tokenizer, checked.jobs
    for note in checked.notes:
        say(f"note: {note}")
    data = load_data(tasks, options, tokenizer)
    accelerator = invocation_accelerator(options)
    share = lambda value: value  # noqa: E731 — one process: its own verdict
    if accelerator.num_processes > 1:  # the default folder name is a time stamp: take process 0's
        from accelerate.utils import broadcast_object_list

        shared = broadcast_object_list([str(settings.output_dir)])
        settings.output_dir, options["output_dir"] = Path(shared[0]), shared[0]
        share = lambda value: broadcast_object_list([value])[0]  # noqa: E731 — process 0's verdict for all
    workers = min(options.get("jobs") or 1, len(jobs))
    if workers > 1 and accelerator.num_processes > 1:
        raise UsageError("--jobs runs several one-process runs side by side; it cannot be combined with torchrun")
    threads = set_cpu_threads(options, accelerator.device) if workers == 1 else threads_of_each_worker(options)
    tasks_by_name = {task.name: task for task in tasks}
    recorded = used_arguments(settings, jobs, tasks_by_name, checked.architecture, accelerator.num_processes,
                              train_config, threads)
    prepare_output_dir(settings, accelerator.wait_for_everyone, share, recorded)
    if workers > 1:
        outcomes = run_side_by_side(jobs, settings, workers, say)
    else:
        outcomes = []
        for number, job in enumerate(jobs, start=1):
            task = tasks_by_name[job.task_name]
            outcomes.append(run_one(task, job, data[task.name], tokenizer, settings, accelerator, say,
                                    label=f"run {number}/{len(jobs)}"))
            if outcomes[-1][0] is None:
                break
    return report_outcomes(jobs, outcomes, settings, accelerator.is_main_process, say)


_WORKER_STATE: dict[str, Any] = {}  # per worker process of --jobs: tokenizer, accelerator, each task's data


def run_job(number: int, total: int, job: Job, settings: Settings) -> tuple[RunResult | None, str | None]:
    """One run in a worker process of --jobs: `run_one`, its console output in OUT/console/run-<number>.log."""
    from dataclasses import replace

    options = settings.options
    task = task_named(job.task_name, options)
    if "tokenizer" not in _WORKER_STATE:
        with usage_errors():
            _WORKER_STATE["tokenizer"] = load_tokenizer(tokenizer_folder(options, [task.model_dir]))
        _WORKER_STATE["accelerator"] = invocation_accelerator(options)
        torch.set_num_threads(threads_of_each_worker(options))
    if task.name not in _WORKER_STATE:
        _WORKER_STATE[task.name] = load_data([task], options)[task.name]
    console_path = Path(settings.output_dir) / "console" / f"run-{number:03d}.log"
    console_path.parent.mkdir(parents=True, exist_ok=True)
    quiet = replace(settings, options={**options, "no_progress": True}, lock=None)
    with console_path.open("a", encoding="utf-8") as console, redirect_stdout(console), redirect_stderr(console):
        def say(message: str = "") -> None:
            console.write(message + "\n")
            console.flush()

        outcome = run_one(task, job, _WORKER_STATE[task.name], _WORKER_STATE["tokenizer"], quiet,
                          _WORKER_STATE["accelerator"], say, label=f"run {number}/{total}")
    if stopped_by_signal(outcome):  # the parent may not have heard yet, and this worker takes the next call now
        stop_further_calls()
    return outcome


def run_side_by_side(jobs: list[Job], settings: Settings, workers: int, say: Say) -> list[tuple]:
    """Every job in `workers` processes (runners.finetune.parallel); one line per finished run."""
    from dataclasses import replace

    threads = threads_of_each_worker(settings.options)
    say(f"{len(jobs)} runs, {workers} at a time ({threads} CPU thread{'s' * (threads != 1)} each); each run's output: "
        f"{Path(settings.output_dir) / 'console'}/run-<number>.log")
    finished = [0]

    def report(position: int, outcome: tuple) -> None:
        finished[0] += 1
        job = jobs[position]
        result, stop_reason = outcome
        if isinstance(result, DivergedRun):
            scores = f"diverged: {result.reason}"
        elif result is not None:
            scores = f"{result.scores} ({result.seconds:.0f} s)"
        else:
            scores = f"stopped: {stop_reason}"
        say(f"[{finished[0]}/{len(jobs)}] {job.task_name} · {job.row_label} · seed {job.seed}: {scores}")
        if stopped_by_signal(outcome):
            # a run stopped by SIGINT/SIGTERM stops the invocation: also where this process ignores SIGINT
            # (started with & by a script), which would otherwise go on to start the next runs
            raise KeyboardInterrupt

    portable = replace(settings, lock=None)  # the lock stays with this process, which holds it
    calls = [(number, len(jobs), job, portable) for number, job in enumerate(jobs, start=1)]
    return run_in_processes(run_job, calls, workers, on_done=report)
