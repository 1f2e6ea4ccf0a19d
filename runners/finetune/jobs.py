"""The runs of an invocation: tasks × recipes × settings (--set, --sweep, --paper-search) × seeds.

    plan_jobs(settings, tasks, architecture)
      ├─ per task: its recipes (--recipe, or the task's default); --train-output-layer adds
      │            output_layer to each one's `train` (the paper's Table 7 variant); a recipe given
      │            twice (same content) runs once, with a note; its folder name is its name made safe,
      │            with a hash of its content where two different recipes share a name (runs.py)
      ├─ per recipe: its settings — the --sweep grid (and the paper's, --paper-search), --set in each
      ├─ each (recipe, setting): the recipe with the values written in, checked by surgery.plan on
      │            the model's architecture: a bad value gets the recipe file's error, before training
      │            (a library baseline, --recipe peft-lora: its record, checked by runners.finetune.library_baselines)
      └─ per seed: one Job, with its run folder OUT/<task>/<label>[/<setting>]/seed-<seed>

>>> from runners.finetune.overrides import Setting, parse_sets
>>> job = Job("rte", {"name": "adapter", "method": "adapter"}, Setting(tuple(parse_sets(["options.n=8"]))), 42, "options.n=8")
>>> job.run_dir(Path("out")).as_posix(), job.recipe_name
('out/rte/adapter/options.n=8/seed-42', 'adapter')
>>> Job("rte", {"name": "../../x", "method": "full-finetune"}, Setting(), 1).run_dir(Path("out")).as_posix()
'out/rte/x/seed-1'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import surgery
from surgery.recipe import RECIPE_KEYS

from .depth import fit_skip_first, stack_depths
from .model_kind import kind_of_model
from .overrides import OverrideError, Override, Setting, parse_sets, parse_sweeps, settings_grid, with_output_layer
from .protocol import search_grid
from .invocation import Settings, UsageError
from .library_baselines import (BaselineRecord, baseline_mapping, check_baseline, is_library_baseline, row_label,
                                digest as baseline_digest)
from .run_folders import content_hash, labels, safe_name


@dataclass(frozen=True)
class Job:
    """One training run: a task, the recipe as it will be applied, the setting that made it, a seed."""

    task_name: str
    recipe: dict[str, Any]
    setting: Setting
    seed: int
    folder: str = ""            # the setting's folder under the recipe's ('' without overrides)
    label: str = ""             # the recipe's folder name and table row ('' : its name, made safe)

    @property
    def recipe_name(self) -> str:
        return str(self.recipe.get("name", "custom"))

    @property
    def recipe_label(self) -> str:
        return self.label or safe_name(self.recipe_name)

    @property
    def row_label(self) -> str:
        """The run's row in the results table: its folder's label; a library baseline's also names the library."""
        return row_label(self.recipe, self.recipe_label) if is_library_baseline(self.recipe) else self.recipe_label

    def run_dir(self, output_dir: Path) -> Path:
        base = Path(output_dir) / self.task_name / self.recipe_label
        return (base / self.folder if self.folder else base) / f"seed-{self.seed}"

    def identity(self) -> dict[str, Any]:
        """What the run folder's run.json records, so a folder never receives another run."""
        recipe = json.loads(json.dumps(load_job_recipe(self.recipe).to_dict(), default=str))
        return {"task": self.task_name, "recipe": recipe, "setting": self.setting.label, "seed": self.seed}


def load_job_recipe(mapping: dict[str, Any]) -> surgery.Recipe | BaselineRecord:
    """A job's mapping as the engine reads it, or a library baseline's record (`runners.finetune.library_baselines`)."""
    return BaselineRecord(mapping) if is_library_baseline(mapping) else surgery.load_recipe(mapping)


def recipe_mapping(recipe: str) -> dict[str, Any]:
    """A recipe (bundled name, YAML path) as the mapping it was written as, with its name."""
    parsed = surgery.load_recipe(recipe)
    return {"name": parsed.name, **parsed.source}


def parsed_overrides(options: dict[str, Any]) -> tuple[list[Override], list[list[Override]]]:
    """--set and --sweep, parsed; a malformed one, or lr given twice, is a UsageError."""
    try:
        sets, sweeps = parse_sets(options.get("set")), parse_sweeps(options.get("sweep"))
        settings_grid(sets, sweeps)
    except OverrideError as error:
        raise UsageError(str(error)) from None
    given = {o.key for o in sets} | {values[0].key for values in sweeps}
    if options.get("lr") is not None and "lr" in given:
        raise UsageError("--lr and an lr in --set/--sweep: give the learning rate once")
    return sets, sweeps


def paper_sweeps(recipe: dict[str, Any], model_config: Any, sets: list[Override], sweeps: list[list[Override]],
                 options: dict[str, Any]) -> list[list[Override]]:
    """--paper-search: the paper's grid for this recipe and model size; keys given otherwise win."""
    given = {o.key for o in sets} | {values[0].key for values in sweeps} | ({"lr"} if options.get("lr") else set())
    grid = [[Override(key, float(v) if key == "lr" else v, f"{v:g}") for v in values]
            for key, values in search_grid(recipe, model_config).items() if key not in given]
    return grid + sweeps


def task_recipes(settings: Settings, tasks: list[Any], default_recipes: dict[str, list[str]], options: dict[str, Any],
                 notes: list[str]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Per task, its recipes as (given as, mapping); one given twice (same content) once, with a note."""
    chosen: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for task in tasks:
        seen: dict[str, str] = {}
        chosen[task.name] = []
        for recipe in settings.recipes or default_recipes[task.name]:
            if is_library_baseline(recipe):  # another library's method: its record, as it is
                base = baseline_mapping(recipe, options)
            else:
                try:
                    base = recipe_mapping(recipe)
                except surgery.SurgeryError as error:
                    raise UsageError(f"recipe {recipe!r}: {error}") from None
                if options.get("train_output_layer"):
                    base = with_output_layer(base)
            digest = _digest(base, recipe)
            if digest in seen:
                note = (f"--recipe {seen[digest]!r} and {recipe!r} are the same recipe; running it once"
                        if seen[digest] != recipe else f"--recipe {recipe!r} is given twice; running it once")
                if note not in notes:
                    notes.append(note)
                continue
            seen[digest] = recipe
            chosen[task.name].append((recipe, base))
    return chosen


def _digest(mapping: dict[str, Any], given_as: str) -> str:
    if is_library_baseline(mapping):
        return baseline_digest(mapping)
    try:
        return content_hash(surgery.load_recipe(mapping))
    except surgery.SurgeryError as error:
        raise UsageError(f"recipe {given_as!r}: {error}") from None


def plan_jobs(settings: Settings, tasks: list[Any], architecture: Any, default_recipes: dict[str, list[str]], *,
              device: Any = None, notes: list[str] | None = None) -> list[Job]:
    """Every run of the invocation, each recipe variant checked on `architecture` (the model on meta)
    and sized for `device`; `notes` gets a line for each recipe merged or folder renamed."""
    options = settings.options
    notes = [] if notes is None else notes
    sets, sweeps = parsed_overrides(options)
    recipes = task_recipes(settings, tasks, default_recipes, options, notes)
    fitting: list[str] = []  # the bundled recipes' skip_first fitted to a shallow model; a file of one's own is as written
    bundled = set(surgery.bundled_recipes())
    kind = kind_of_model(architecture)  # a classifier's recipes also train its head
    depths = stack_depths(architecture)
    recipes = {task: [(given, base if is_library_baseline(base) else
                       kind.fit_recipe(fit_skip_first(base, depths, fitting) if given in bundled else base))
                      for given, base in pairs] for task, pairs in recipes.items()}
    notes += [note for note in dict.fromkeys(fitting) if note not in notes]
    every = {_digest(base, given): (given, load_job_recipe(base)) for pairs in recipes.values() for given, base in pairs}
    label_of = labels(list(every.values()), notes)
    checked: set[str] = set()
    jobs: list[Job] = []
    for task in tasks:
        for recipe, base in recipes[task.name]:
            label = label_of[_digest(base, recipe)]
            grid_sweeps = paper_sweeps(base, architecture.config, sets, sweeps, options) if options.get("paper_search") else sweeps
            folders: set[str] = set()
            for setting in settings_grid(sets, grid_sweeps):
                mapping = setting.recipe_mapping(base)
                key = json.dumps(mapping, sort_keys=True, default=str)
                if key not in checked:
                    context = f"recipe {recipe!r}" + (f" [{setting.label}]" if setting.label else "")
                    if is_library_baseline(mapping):
                        check_baseline(mapping, architecture)
                    else:
                        check_plan(context, architecture, mapping, device)
                    checked.add(key)
                folder = setting.folder
                while folder in folders:  # two labels that differ only in characters a folder name replaces
                    folder += "_"
                folders.add(folder)
                jobs += [Job(task.name, mapping, setting, seed, folder, label) for seed in settings.seeds]
    return jobs


def check_plan(context: str, architecture: Any, mapping: dict[str, Any], device: Any) -> None:
    """`surgery.plan` of the recipe on the model's architecture: a bad value gets the recipe file's error."""
    try:
        surgery.plan(architecture, mapping, device=device)
    except surgery.RecipeError as error:
        hint = ("" if error.key.split(".")[0] in RECIPE_KEYS else
                "; --set and --sweep take recipe keys and lr (other training settings have "
                "their own options, e.g. --epochs)")
        raise UsageError(f"{context}: {error}{hint}") from None
    except surgery.SurgeryError as error:
        raise UsageError(f"{context}: {error}") from None


def is_sweep(options: dict[str, Any]) -> bool:
    return bool(options.get("sweep") or options.get("paper_search"))
