"""``--one-base``: several tasks trained into one frozen base, one named adapter per task.

    python -m runners.finetune --task rte,mrpc,cola --recipe compacter++ --model t5-base --one-base

For each recipe and seed one base model is built; each task in turn gets an adapter named after
it (``surgery.apply(model, recipe, name=task)``), which is then the only one in effect and the only
one training, so the adapters trained before it stay bit for bit as they were. When every task is
trained, the same model scores each task again:

* **alone** — the test score right after the adapter trained (its best validation checkpoint);
* **shared base** — `surgery.set_active(model, task)` on the model that now holds every adapter;
* **mixed batches** — all tasks' test examples in one stream, each with its own adapter in every
  batch (``with surgery.mixed_batch(model, names): model.generate(...)``), for the methods that allow it (site adapters,
  BitFit); ``—`` for the others.

The three agree (the last up to float rounding in the batches), which is the point: one base
serves every task. Each run keeps the usual files in
``OUT/one-base/<recipe>/seed-<seed>/<task>/`` (``best/`` is the task's adapter, loadable under any
name); ``OUT/results.md`` / ``results.csv`` say which adapter scored what. ``--resume`` loads the
adapters of finished tasks from their ``best/`` and continues the interrupted one.
"""

from __future__ import annotations

import copy
import csv
import io
import statistics
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import set_seed  # not transformers.set_seed: its import pulls in PEFT and bitsandbytes

import surgery
from surgery.method import get_method_class
from surgery.naming import check_adapter_name
from surgery.sites import SITE_NAMES

from .atomic import write_text
from .batches import collate_sources
from .evaluation import evaluate
from .generation import generation_config
from .invocation import EXIT_INTERRUPTED, Say, Settings, UsageError, prepare_output_dir
from .jobs import Job, is_sweep
from .model import build_model
from .model_kind import SEQ2SEQ, kind_of_model
from .outcomes import stopped_by_signal
from .results import RESULT_FILE, TASK_TITLES, DivergedRun, RunResult
from .run_lines import describe_model
from .run import (claim_run_folder, invocation_accelerator, load_data, preflight, set_cpu_threads, train_and_finish,
                  train_config, usage_errors)
from .used_arguments import used_arguments
from .state import resume_point
from .training import _tokenize

FOLDER = "one-base"


def adapter_name(task_name: str) -> str:
    try:
        return check_adapter_name(task_name, SITE_NAMES)
    except surgery.SurgeryError as error:
        raise UsageError(f"--one-base names each adapter after its task: {error}") from None


def check_stacking(architecture: torch.nn.Module, groups: dict[tuple[str, int], list[Job]]) -> None:
    """Every recipe can hold one adapter per task on one base (e.g. full fine-tuning cannot): checked on meta."""
    for jobs in groups.values():
        model = copy.deepcopy(architecture)
        for job in jobs:
            method = get_method_class(surgery.load_recipe(job.recipe).method)
            if method.trains_base_itself:  # it keeps no adapter of its own to save, reload or switch to
                raise UsageError(f"--one-base, recipe {job.recipe_name!r}: method {method.name!r} trains the base "
                                 "itself, so no per-task adapter can be kept on a shared base; give a recipe that "
                                 "inserts adapters (e.g. compacter++, adapter, bitfit), or leave out --one-base")
            try:
                surgery.apply(model, job.recipe, name=adapter_name(job.task_name))
            except surgery.SurgeryError as error:
                raise UsageError(f"--one-base, recipe {job.recipe_name!r}, task {job.task_name!r}: {error}") from None


def run_dir(settings: Settings, job: Job) -> Path:
    return settings.output_dir / FOLDER / job.recipe_label / f"seed-{job.seed}" / job.task_name


def train_adapter(model, task, job: Job, splits, tokenizer, settings: Settings, accelerator, say: Say,
                  label: str) -> tuple[RunResult | None, str | None]:
    """Apply (or reload) task's adapter on the shared model and train it; (result, None) or (None, why it stopped)."""
    options, folder = settings.options, run_dir(settings, job)
    name = adapter_name(job.task_name)
    resumed = bool(options.get("resume"))
    claim_run_folder(folder, job, resumed, accelerator.is_main_process)
    if resumed and (folder / RESULT_FILE).is_file():
        with usage_errors(f"{folder / 'best'}: "):
            surgery.load_adapter(model, folder / "best", name=name)
        say(f"{label}: finished earlier; adapter {name!r} loaded from {folder / 'best'}")
        return RunResult.load(folder / RESULT_FILE), None
    resume_from = resume_point(folder, accelerator, say) if resumed else None
    set_seed(job.seed)  # the adapter's initial values do not depend on the tasks trained before it
    with usage_errors(f"recipe {job.recipe_name!r}: "):
        report = surgery.report(surgery.apply(model, job.recipe, name=name))
    the_plan = model.surgery.records[name].plan
    config, lr_source = train_config(options, task, folder, job.seed, resume_from,
                                     recipe=the_plan.recipe,
                                     model_config=model.config, setting_lr=job.setting.learning_rate, say=say)
    say(f"\n=== {label}: task {task.name} · adapter {name!r} · recipe {job.recipe_name} · seed {job.seed} · one base ===")
    say(f"adapters on the base: {', '.join(surgery.list_adapters(model))} (training {name!r} only)")
    say(str(report))
    say(f"training: {config.epochs} epochs, batch {config.batch_size}, lr {config.learning_rate:g} ({lr_source}); output: {folder}")
    return train_and_finish(model, tokenizer, task, job, splits, config, report, folder, settings, accelerator, say,
                            setting=f"adapter {name}")


def _sources(tokenizer, task, splits, options: dict[str, Any], job: Job, model) -> tuple[list, list[dict], int]:
    config, _ = train_config(options, task, Path("."), job.seed, None,
                             recipe=model.surgery.records[adapter_name(job.task_name)].plan.recipe, model_config=model.config)
    data = _tokenize(tokenizer, task, splits, config)
    return data.test_sources, data.test_rows, data.generation_max_length


@torch.no_grad()
def score_on_the_shared_base(model, tokenizer, tasks, jobs: list[Job], data, options, device, batch_size: int
                             ) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]] | None]:
    """(task → test scores with its adapter switched on, task → test scores in mixed batches or None)."""
    switched, streams = {}, []
    for job in jobs:
        task, name = tasks[job.task_name], adapter_name(job.task_name)
        sources, rows, length = _sources(tokenizer, task, data[job.task_name], options, job, model)
        surgery.set_active(model, name)
        switched[job.task_name] = evaluate(model, tokenizer, task, rows, sources, batch_size=batch_size,
                                           max_new_tokens=length, device=device).scores
        streams += [(job.task_name, name, i, source, length) for i, source in enumerate(sources)]
    try:
        with surgery.mixed_batch(model, [adapter_name(job.task_name) for job in jobs]):
            pass  # refuses methods a mixed batch cannot serve, with the reason
    except surgery.SurgeryError:
        return switched, None
    longest = max(entry[4] for entry in streams)
    config = generation_config(tokenizer, longest, model)
    order = sorted(range(len(streams)), key=lambda k: len(streams[k][3]))
    predictions: dict[str, dict[int, str]] = {job.task_name: {} for job in jobs}
    model.eval()
    for start in range(0, len(order), batch_size):
        chosen = [streams[k] for k in order[start:start + batch_size]]
        batch = {k: v.to(device) for k, v in collate_sources([c[3] for c in chosen], tokenizer.pad_token_id).items()}
        with surgery.mixed_batch(model, [c[1] for c in chosen]):
            output = model.generate(**batch, generation_config=config)
        for (task_name, _, index, _, length), tokens in zip(chosen, output):
            # greedy: the first `length` tokens are what the task's own max_new_tokens would give
            predictions[task_name][index] = tokenizer.decode(tokens[: length + 1], skip_special_tokens=True).strip()
    mixed = {}
    for job in jobs:
        task = tasks[job.task_name]
        _, rows, _ = _sources(tokenizer, task, data[job.task_name], options, job, model)
        mixed[job.task_name] = task.score([predictions[job.task_name][i] for i in range(len(rows))], list(rows))
    return switched, mixed


def _summary(values: list[dict[str, float]] | None) -> str:
    if not values or any(v is None for v in values):
        return "—"
    metrics = list(values[0])
    parts = []
    for metric in metrics:
        numbers = [v[metric] for v in values]
        spread = statistics.stdev(numbers) if len(numbers) > 1 else 0.0
        parts.append(f"{statistics.mean(numbers):.1f} ± {spread:.1f}" if len(numbers) > 1 else f"{numbers[0]:.1f}")
    return " / ".join(parts)


def tables(entries: list[dict[str, Any]]) -> tuple[str, str]:
    """(markdown, csv): one row per (recipe, adapter), mean ± std over seeds, alone / shared base / mixed."""
    keyed: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for entry in entries:
        keyed.setdefault((entry["recipe"], entry["adapter"]), []).append(entry)
    lines = ["| adapter | task (metrics) | recipe | trainable params | test, alone | test, shared base | test, mixed batches | seeds |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["adapter", "task", "recipe", "seed", "metric", "test_alone", "test_shared_base", "test_mixed_batches",
                     "trainable_parameters", "adapter_folder"])
    for (recipe, adapter), group in keyed.items():
        first = group[0]
        metrics = "/".join(first["alone"])
        lines.append(f"| {adapter} | {TASK_TITLES.get(first['task'], first['task'])} ({metrics}) | {recipe} | "
                     f"{first['trainable']:,} | {_summary([e['alone'] for e in group])} | "
                     f"{_summary([e['shared'] for e in group])} | {_summary([e['mixed'] for e in group])} | "
                     f"{', '.join(str(e['seed']) for e in group)} |")
        for entry in group:
            for metric, value in entry["alone"].items():
                mixed = entry["mixed"][metric] if entry["mixed"] else ""
                writer.writerow([adapter, entry["task"], recipe, entry["seed"], metric, value, entry["shared"][metric], mixed,
                                 entry["trainable"], entry["folder"]])
    return "\n".join(lines), out.getvalue()


def checked_preflight(settings: Settings):
    """The finetune runner's preflight, and what --one-base needs besides: no sweep, a seq2seq base."""
    options = settings.options
    if is_sweep(options):
        raise UsageError("--one-base trains one adapter per task into one base; --sweep and --paper-search train "
                         "many settings of one task: run them without --one-base")
    checked = preflight(settings)
    kind = kind_of_model(checked.architecture)
    if kind is not SEQ2SEQ:
        raise UsageError(f"--one-base scores every task by generation on one sequence-to-sequence base; --model "
                         f"{options.get('model')} is a {kind.name} model: train its tasks without --one-base")
    return checked


def run_one_base(settings: Settings, say: Say) -> int:
    """Every task of the invocation into one base per (recipe, seed); returns the exit code."""
    options = settings.options
    checked = checked_preflight(settings)
    tasks, tokenizer, overrides, jobs = checked.tasks, checked.tokenizer, checked.overrides, checked.jobs
    for task in tasks:
        adapter_name(task.name)
    groups: dict[tuple[str, int], list[Job]] = {}
    for job in jobs:
        groups.setdefault((job.recipe_label, job.seed), []).append(job)
    check_stacking(checked.architecture, groups)
    for note in checked.notes:
        say(f"note: {note}")
    data = load_data(tasks, options, tokenizer)
    accelerator = invocation_accelerator(options)
    if accelerator.num_processes > 1:
        raise UsageError("--one-base runs in one process (the adapters are switched on one model between runs)")
    threads = set_cpu_threads(options, accelerator.device)
    by_name = {task.name: task for task in tasks}
    prepare_output_dir(settings, recorded=used_arguments(settings, jobs, by_name, checked.architecture, 1, train_config,
                                                         threads))
    entries: list[dict[str, Any]] = []
    number = 0
    for (label, seed), group in groups.items():
        model = build_model(options.get("model"), tokenizer, overrides, seed=seed,
                            random_init=bool(options.get("random_init")))
        say(describe_model(model, options) + f" — one base for {', '.join(j.task_name for j in group)}")
        results = {}
        for job in group:
            number += 1
            result, stop_reason = train_adapter(model, by_name[job.task_name], job, data[job.task_name], tokenizer, settings,
                                                accelerator, say, label=f"run {number}/{len(jobs)}")
            if result is None:
                return EXIT_INTERRUPTED if stopped_by_signal((result, stop_reason)) else 0
            if isinstance(result, DivergedRun):  # the shared base cannot serve a half-trained adapter
                folder = run_dir(settings, job).relative_to(settings.output_dir).as_posix()
                raise UsageError(f"run {folder}: {result.reason}")
            results[job.task_name] = result
        batch_size = options.get("eval_batch_size") or 32
        switched, mixed = score_on_the_shared_base(model, tokenizer, by_name, group, data, options, accelerator.device,
                                                   batch_size)
        for job in group:
            result = results[job.task_name]
            entries.append({"recipe": label, "adapter": adapter_name(job.task_name), "task": job.task_name, "seed": seed,
                            "alone": result.test, "shared": switched[job.task_name],
                            "mixed": mixed[job.task_name] if mixed else None, "trainable": result.trainable_parameters,
                            "folder": str(run_dir(settings, job) / "best")})
    markdown, table_csv = tables(entries)
    header = ("One base, one adapter per task: test split, each adapter's best validation checkpoint; alone = right after "
              "it trained, shared base = switched on in the model holding every adapter, mixed batches = all tasks' "
              "examples together, each with its adapter (mean ± std over seeds)\n\n")
    write_text(settings.output_dir / "results.md", header + markdown + "\n")
    write_text(settings.output_dir / "results.csv", table_csv)
    say("\nResults (" + header.strip() + "):\n")
    say(markdown)
    say(f"\nwrote {settings.output_dir / 'results.md'}, {settings.output_dir / 'results.csv'}; adapters in "
        f"{settings.output_dir / FOLDER}/<recipe>/seed-<seed>/<task>/best")
    return 0
