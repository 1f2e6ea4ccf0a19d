"""An invocation of `runners.finetune`, resolved: its options merged, checked and completed.

* :func:`resolve_settings` — a resumed invocation gets its saved options back (changing one that
  affects the result is refused), seeds and the output folder are filled in, every option checked
  (`runners.finetune.arguments`);
* :func:`prepare_output_dir` — the folder is locked (`runners.finetune.lock`: one process per
  folder), created, and the options saved in ``arguments.json``, refusing to mix two invocations
  in one folder or to write into a folder of other files.

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
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runners.output_folder import ARGUMENTS_FILE, clear_folder, folder_refusal

from .arguments import check_options, check_output_dir, comma_list
from .atomic import write_json
from .errors import EXIT_INTERRUPTED, EXIT_OUT_OF_MEMORY, EXIT_USAGE, UsageError
from .lock import OutputLock
from .used_arguments import NOT_SAVED, given_options

__all__ = ["EXIT_INTERRUPTED", "EXIT_OUT_OF_MEMORY", "EXIT_USAGE", "Settings", "UsageError", "is_main_process",
           "prepare_output_dir", "resolve_settings", "say", "shipped_model"]

# The main job's task: world 2's sentiment task, whose test words only pretraining teaches (a
# random-init twin of compacter++ scores 49.9 there over seeds 42-44, the pretrained model 72.7;
# runners/embedded/world2/README.md).
DEFAULT_TASK = "world2-sst2"
DEFAULT_RECIPE = "compacter++"
# Options a resumed invocation may set differently from the interrupted one: they change neither
# the data, the model nor the arithmetic of training.
RESUME_MAY_CHANGE = {"resume", "jobs", "stop_after_steps", "save_every_steps", "no_progress", "log_every", "overwrite"}


@dataclass
class Settings:
    """The resolved command line: every option has its value."""

    tasks: list[str]
    recipes: list[str] | None      # None: the per-task default
    seeds: list[int]
    output_dir: Path
    options: dict[str, Any]        # the parsed namespace, after merging a resumed run's
    lock: OutputLock | None = None  # held by the main process from prepare_output_dir on

    def release_lock(self) -> None:
        """Let another invocation write into the output folder (when this one has finished with it)."""
        if self.lock is not None:
            self.lock.release()


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


Say = Callable[[str], None]  # how a run reports a line: `say`, or a test's collector


def say(message: str = "") -> None:
    if is_main_process():
        print(message, flush=True)


def _saved_arguments(folder: Path) -> tuple[Path, dict[str, Any]]:
    """The arguments.json of the invocation whose --output-dir is `folder` (or one of its parents)."""
    path = next((p / ARGUMENTS_FILE for p in (folder, *folder.parents) if (p / ARGUMENTS_FILE).is_file()), None)
    if path is None:
        raise UsageError(f"--resume {folder}: no {ARGUMENTS_FILE} in it or above it; give the --output-dir of "
                         "the interrupted invocation")
    try:
        saved = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, OSError) as error:
        raise UsageError(f"--resume {folder}: {path} is damaged ({type(error).__name__}: {error}); it cannot be "
                         "resumed — start a new run with its options") from None
    if not isinstance(saved, dict):
        raise UsageError(f"--resume {folder}: {path} does not hold the options of an invocation")
    return path, saved


def resolve_settings(args: argparse.Namespace) -> Settings:
    """Merge a resumed run's saved arguments, check every option, fill in seeds and the output folder.

    Light on purpose (no torch, no transformers): a usage error is reported in well under a second."""
    options = {key: value for key, value in vars(args).items()}
    check_options(options)
    if args.resume:
        saved_path, saved = _saved_arguments(Path(args.resume))
        saved = given_options(saved)  # the defaults it filled in are left out again, and filled in anew
        for key, value in options.items():
            if value is not None and key not in RESUME_MAY_CHANGE and saved.get(key) != value:
                raise UsageError(f"--{key.replace('_', '-')} {value} differs from the interrupted run's "
                                 f"({saved.get(key)}); a resumed run keeps its settings (leave the option out)")
        options = {**saved, **{k: v for k, v in options.items() if v is not None and k in RESUME_MAY_CHANGE}}
        options["resume"] = str(saved_path.parent)
        options["output_dir"] = str(saved_path.parent)
        check_options(options)
    if options.get("seed") is not None and options.get("seeds"):
        raise UsageError("give --seed or --seeds, not both")
    low_resource = options.get("low_resource")
    if low_resource is not None:
        from .protocol import LOW_RESOURCE_EPOCHS  # the paper's schedule (imports the engine)

        if options.get("epochs") is None and low_resource not in LOW_RESOURCE_EPOCHS:
            raise UsageError(f"--low-resource {low_resource}: the paper's schedule covers "
                             f"{', '.join(map(str, LOW_RESOURCE_EPOCHS))} examples; give --epochs for other sizes")
        if options.get("max_train") is not None:
            raise UsageError("give --low-resource or --max-train, not both")
    seeds = options.get("seeds") or ([options["seed"]] if options.get("seed") is not None else
                                     [42, 43, 44, 45, 46] if low_resource is not None else [42])
    output_dir = Path(options.get("output_dir") or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
    check_output_dir(output_dir)
    options["output_dir"] = str(output_dir)
    from runners.tasks import expand_task_names, get_task

    if options.get("train_file") is not None:
        tasks = [own_task_name(options)]
    else:
        tasks = expand_task_names(comma_list("--task", options["task"]) if options.get("task") is not None
                                  else [DEFAULT_TASK])
        try:
            for name in tasks:
                get_task(name)  # an unknown name is refused here, before torch is imported
        except ValueError as error:  # get_task's message names the closest task
            raise UsageError(str(error)) from None
    if options.get("model") is None and options.get("train_file") is None:
        shipped = shipped_model(tasks)  # tasks of two shipped models refused, with --init-config too (one tokenizer)
        if not options.get("init_config"):
            options["model"] = shipped
    recipes = comma_list("--recipe", options["recipe"]) if options.get("recipe") is not None else None
    if recipes is not None and "all" in recipes:  # every bundled recipe, in name order
        import surgery

        recipes = [name for recipe in recipes for name in (surgery.bundled_recipes() if recipe == "all" else [recipe])]
    from .library_baselines import check_baseline_options

    check_baseline_options(recipes, options)  # PEFT missing: said here, before any data or model is read
    return Settings(tasks, recipes, list(seeds), output_dir, options)


def shipped_model(tasks: list[str]) -> str | None:
    """The model a run of `tasks` trains when --model is left out: the one their tasks are written for
    (`Task.model_dir`: world 2's pretrained T5 for world2-*), or None, the runner's default (world 1's).

    One invocation trains one model, so tasks written for different models are refused together.

    >>> shipped_model(["embedded-sst2", "rte"]) is None, Path(shipped_model(["world2-sst2"])).parts[-3:]
    (True, ('embedded', 'world2', 'model'))
    >>> shipped_model(["world2-sst2", "embedded-sst2"])
    Traceback (most recent call last):
    ...
    runners.errors.UsageError: --task world2-sst2,embedded-sst2: one invocation trains one model, and these tasks are written for different ones (world2-sst2: runners/embedded/world2/model; embedded-sst2: runners/embedded/model, the default); run them separately, or give --model
    """
    from runners.embedded import MODEL_DIR
    from runners.tasks import get_task

    folders = {name: get_task(name).model_dir for name in tasks}
    if len(set(folders.values())) > 1:
        def shown(folder: Path | None) -> str:
            return _relative(folder) if folder is not None else f"{_relative(MODEL_DIR)}, the default"
        which = "; ".join(f"{name}: {shown(folder)}" for name, folder in folders.items())
        raise UsageError(f"--task {','.join(tasks)}: one invocation trains one model, and these tasks are written "
                         f"for different ones ({which}); run them separately, or give --model")
    folder = next(iter(folders.values()), None)
    if folder is None:
        return None
    if not (folder / "config.json").is_file():
        raise UsageError(f"--task {','.join(tasks)} trains the pretrained T5 shipped in {_relative(folder)} when --model "
                         f"is left out, and that folder holds no model (no config.json); restore it (git checkout -- "
                         f"{_relative(folder)}) or remake it as the README beside it says, or give --model")
    return str(folder)


def _relative(folder: Path) -> str:
    """`folder` relative to the repository (where the runners ship), for messages."""
    root = Path(__file__).resolve().parents[2]
    return folder.relative_to(root).as_posix() if folder.is_relative_to(root) else str(folder)


def own_task_name(options: dict[str, Any]) -> str:
    """The name of the --train-file task: --task, or 'own'; a registered task's name is refused."""
    from runners.tasks import TASK_GROUPS, TASKS
    from runners.tasks.own_data import DEFAULT_NAME

    name = options.get("task") or DEFAULT_NAME
    if name.lower() in TASKS or name.lower() in TASK_GROUPS:
        raise UsageError(f"--task {name!r} with --train-file: that is a registered task (its data goes in --data-dir); "
                         "name your own task otherwise, e.g. --task my-" + name.lower())
    return name


def _refusal(folder: Path, options: dict[str, Any]) -> tuple[str | None, bool]:
    """(why `folder` cannot take this invocation, or None; whether to clear it first): the runners' one policy."""
    return folder_refusal(folder, "runners.finetune", overwrite=bool(options.get("overwrite")),
                          resume=bool(options.get("resume")))


def prepare_output_dir(settings: Settings, barrier: Callable[[], None] = lambda: None,
                       share: Callable[[Any], Any] = lambda value: value, recorded: dict[str, Any] | None = None) -> None:
    """Lock and create the output folder and save the options; refuse to mix with an earlier invocation.

    `recorded`: the options with the values the runs use (`runners.finetune.used_arguments`), saved
    in place of the options as given.

    Every process calls this; the main one takes the lock, checks and writes, and `share(value)`
    hands its verdict to the others (identity for one process), so all of them stop together.
    """
    folder, options = settings.output_dir, settings.options
    verdict: str | None = None
    if is_main_process():
        try:
            verdict, _ = _refusal(folder, options)  # before locking: a refused folder gets no lock file either
            if verdict is not None:
                raise UsageError(verdict)
            settings.lock = OutputLock(folder)
            settings.lock.acquire()
            verdict, replace = _refusal(folder, options)  # again: another process may have started meanwhile
            if verdict is None:
                if replace:
                    clear_folder(folder)
                saved = {k: v for k, v in (options if recorded is None else recorded).items()
                         if k not in NOT_SAVED}
                write_json(folder / ARGUMENTS_FILE, saved)
        except UsageError as error:
            verdict = str(error)
        except OSError as error:
            verdict = f"--output-dir {folder}: cannot write there ({error.strerror or error})"
        if verdict is not None:
            settings.release_lock()
    verdict = share(verdict)
    barrier()
    if verdict is not None:
        raise UsageError(verdict)
