"""--set and --sweep: recipe keys from the command line, checked like the file; a sweep chooses on validation only."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

import runners.finetune.run
import surgery
from conftest import write_rte
from runners import finetune
from runners.finetune.invocation import resolve_settings
from runners.finetune.jobs import plan_jobs
from runners.finetune.model import build_model, parse_init_overrides
from runners.finetune.results import RunResult
from runners.finetune.state import Progress
from runners.finetune.sweep import select_by_validation
from runners.finetune.training import TrainOutcome
from runners.tasks import get_task
from runners.tasks.data import embedded_tokenizer

TINY = ["d_model=128", "d_kv=32", "d_ff=64", "num_layers=1", "num_heads=4"]  # bottleneck 4: compacter's n = 4 fits


def run_args(data_dir: Path, out: Path, *extra: str, recipe: str = "compacter") -> list[str]:
    return ["--task", "rte", "--data-dir", str(data_dir), "--init-config", *TINY, "--recipe", recipe, "--epochs", "1",
            "--batch-size", "8", "--output-dir", str(out), "--no-progress", *extra]


def tiny_architecture():
    return build_model(None, embedded_tokenizer(), parse_init_overrides(TINY))


# -- --set errors are the recipe file's errors ---------------------------------------------------

BAD_SETTINGS = [
    (["options.n=3"], {"options": {"n": 3}}),                          # does not divide the hidden size
    (["options.m=8"], {"options": {"m": 8}}),                          # not an option of the method
    (["options.n=four"], {"options": {"n": "four"}}),                  # not an integer
    (["options.projection=kron"], {"options": {"projection": "kron"}}),
    (["sites=after_fnn"], {"sites": "after_fnn"}),                      # did you mean 'after_ffn'?
    (["layers.encoder.skip_first=9"], {"layers": {"encoder": {"skip_first": 9}}}),
    (["train=[layer_norms,outputs]"], {"train": ["layer_norms", "outputs"]}),
    (["foo=1"], {"foo": 1}),                                           # not a recipe key
]


def written_in(recipe: dict, change: dict) -> dict:
    """`recipe` with `change` merged in one level deep (as a person would edit the YAML file)."""
    result = {**recipe}
    for key, value in change.items():
        result[key] = {**result[key], **value} if isinstance(value, dict) and isinstance(result.get(key), dict) else value
    return result


@pytest.mark.parametrize("settings, change", BAD_SETTINGS)
def test_set_errors_are_the_recipe_files_errors(settings, change, tmp_path, capsys):
    data_dir = write_rte(tmp_path / "rte", train=8, validation=4)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(written_in(surgery.load_recipe("compacter").source, change)))
    with pytest.raises(surgery.RecipeError) as from_file:  # the engine's own verdict on the edited file
        surgery.plan(tiny_architecture(), str(path))
    expected = str(from_file.value)

    assert finetune.main(run_args(data_dir, tmp_path / "file", recipe=str(path))) == 2
    file_error = capsys.readouterr().err
    assert finetune.main(run_args(data_dir, tmp_path / "set", "--set", *settings)) == 2
    set_error = capsys.readouterr().err
    assert f": {expected}" in file_error and f": {expected}" in set_error
    assert "Traceback" not in set_error and not (tmp_path / "set").exists()  # refused before anything was written


def test_a_setting_changes_the_run_and_names_its_folder(tmp_path, capsys):
    data_dir, out = write_rte(tmp_path / "rte", train=8, validation=4), tmp_path / "out"
    assert finetune.main(run_args(data_dir, out, "--set", "options.reduction_factor=16", "lr=1e-3")) == 0
    printed = capsys.readouterr().out
    run_dir = out / "rte" / "compacter" / "options.reduction_factor=16,lr=1e-3" / "seed-42"
    result = RunResult.load(run_dir / "result.json")
    assert result.setting == "options.reduction_factor=16,lr=1e-3"
    # bottleneck 128/16 = 8 instead of 4: 4 adapters (2 sites × 2 stacks), each 2·(k+d) factors and d+k biases
    default = surgery.plan(tiny_architecture(), "compacter").trainable_parameters
    assert result.trainable_parameters - default == 4 * (2 * (8 - 4) + (8 - 4))
    assert "lr 0.001 (--sweep/--set lr)" in printed
    assert "compacter [options.reduction_factor=16,lr=1e-3]" in (out / "results.md").read_text()


@pytest.mark.parametrize("arguments, message", [
    (["--set", "options.n"], "expected KEY=VALUE"),
    (["--sweep", "lr=3e-3,"], "empty value"),
    (["--sweep", "lr=0,3e-3"], "positive number"),
    (["--set", "options.n=4", "--sweep", "options.n=4,8"], "both --set and --sweep"),
    (["--sweep", "lr=3e-3", "--lr", "1e-3"], "give the learning rate once"),
    (["--sweep", "options.n=1,2", "options.n=4"], "more than once"),
])
def test_malformed_or_conflicting_overrides_exit_2(arguments, message, tmp_path, capsys):
    data_dir = write_rte(tmp_path / "rte", train=8, validation=4)
    assert finetune.main(run_args(data_dir, tmp_path / "out", *arguments)) == 2
    assert message in capsys.readouterr().err


# -- a sweep chooses on validation, never on test --------------------------------------------------

# lr → validation and test accuracy per seed, made to disagree: the best test score (lr 3e-4, 95)
# and the best single validation run (lr 3e-2, seed 1) are not the best mean validation (lr 3e-3).
SCORES = {3e-4: {1: (60.0, 95.0), 2: (62.0, 94.0)},
          3e-3: {1: (70.0, 10.0), 2: (71.0, 12.0)},
          3e-2: {1: (90.0, 50.0), 2: (40.0, 52.0)}}


def test_sweep_picks_the_best_mean_validation_never_the_test(tmp_path, monkeypatch, capsys):
    data_dir, out = write_rte(tmp_path / "rte", train=8, validation=4), tmp_path / "out"
    trained = []

    def scripted_train(model, tokenizer, task, splits, config, accelerator=None, log=None):
        validation, test = SCORES[config.learning_rate][config.seed]
        trained.append((config.learning_rate, config.seed))
        progress = Progress(best_score=validation, best_epoch=1, best_validation={"accuracy": validation})
        return TrainOutcome(True, progress, Path(config.output_dir) / "last", None, test={"accuracy": test})

    monkeypatch.setattr(runners.finetune.run, "train", scripted_train)
    assert finetune.main(run_args(data_dir, out, "--sweep", "lr=3e-4,3e-3,3e-2", "--seeds", "1", "2")) == 0
    printed = capsys.readouterr().out
    assert sorted(trained) == sorted((lr, seed) for lr in SCORES for seed in (1, 2))  # every setting trained

    results = [RunResult.load(p) for p in sorted(out.rglob("result.json"))]
    assert len(results) == 6
    (chosen,) = select_by_validation(results)
    assert chosen.setting == "lr=3e-3" and chosen.validation_score == pytest.approx(70.5)
    assert chosen.test.cells[0].mean == pytest.approx(11.0)

    markdown = (out / "results.md").read_text()
    assert "| compacter | RTE (accuracy) | lr=3e-3 (best of 3) | 70.5 | 11.0 ± 1.4 |" in markdown
    for label, test, validation in (("lr=3e-4", "94.5 ± 0.7", "61.0"), ("lr=3e-3", "11.0 ± 1.4", "70.5"),
                                    ("lr=3e-2", "51.0 ± 1.4", "65.0")):  # the whole grid
        assert f"| compacter [{label}] |" in markdown and f"{test} (val {validation})" in markdown
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [(r["setting"], r["selected"]) for r in rows] == [("lr=3e-4", "0"), ("lr=3e-3", "1"), ("lr=3e-2", "0")]
    assert "lr=3e-3 (best of 3)" in printed


def test_the_sweep_command_chooses_on_validation_from_a_sweeps_folder_as_the_sweep_does(tmp_path, capsys):
    """`python -m runners.finetune.sweep OUT` on a sweep's runs (here an interrupted one: 3e-1 never
    ran) prints the choice on validation; a tie goes to the first of the ascending grid (3e-4, not
    3e-2, although "lr=3e-2" sorts first as text)."""
    from runners.finetune import sweep as results_command

    scores = {"3e-5": (50.0, 1.0), "3e-4": (80.0, 70.0), "3e-3": (60.0, 99.0), "3e-2": (80.0, 10.0)}  # validation, test
    for lr, (validation, test) in scores.items():
        folder = tmp_path / "out" / "rte" / "compacter" / f"lr={lr}" / "seed-1"
        folder.mkdir(parents=True)
        RunResult("rte", "compacter", 1, {"accuracy": test}, validation={"accuracy": validation},
                  setting=f"lr={lr}").save(folder)
    assert results_command.main([str(tmp_path / "out"), "--write", str(tmp_path / "tables")]) == 0
    printed = capsys.readouterr().out
    assert "## Chosen on validation" in printed
    assert "| compacter | RTE (accuracy) | lr=3e-4 (best of 4) | 80.0 | 70.0 |" in printed
    rows = list(csv.DictReader((tmp_path / "tables" / "results.csv").open()))
    assert [(r["setting"], r["selected"]) for r in rows] == [("lr=3e-5", "0"), ("lr=3e-4", "1"), ("lr=3e-3", "0"),
                                                            ("lr=3e-2", "0")]


def test_sweep_on_a_tiny_model_trains_every_setting_and_reports_the_validation_choice(tmp_path, capsys):
    data_dir, out = write_rte(tmp_path / "rte", train=16, validation=12), tmp_path / "out"
    arguments = run_args(data_dir, out, "--sweep", "lr=1e-3,3e-2", "sites=[after_ffn],[after_self_attention,after_ffn]",
                         "--epochs", "2", recipe="adapter")
    assert finetune.main(arguments) == 0
    capsys.readouterr()
    grid = [f"lr={lr},sites={sites}" for lr in ("1e-3", "3e-2") for sites in ("[after_ffn]", "[after_self_attention,after_ffn]")]
    results = {r.setting: r for r in (RunResult.load(p) for p in out.rglob("result.json"))}
    assert set(results) == set(grid)

    def logged_best_validation(setting: str) -> float:
        """The best validation accuracy in the run's log (independent of result.json and of the selection)."""
        log = [json.loads(line) for line in (Path(results[setting].output_dir) / "log.jsonl").read_text().splitlines()]
        return max(r["validation"]["accuracy"] for r in log if r["event"] == "eval")
    best = max(grid, key=logged_best_validation)  # max keeps the first of equals: grid order, as the selection
    row = next(r for r in csv.DictReader((out / "results.csv").open()) if r["selected"] == "1")
    assert row["setting"] == best
    assert float(row["mean"]) == pytest.approx(results[best].test["accuracy"])
    # Two sites train twice the adapters: the setting reached the model.
    one, two = results["lr=1e-3,sites=[after_ffn]"], results["lr=1e-3,sites=[after_self_attention,after_ffn]"]
    assert two.trainable_parameters > one.trainable_parameters


def test_paper_search_expands_the_papers_grid_for_the_model_size(tmp_path):
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    with torch.device("meta"):
        small = T5ForConditionalGeneration(T5Config(d_model=512, num_layers=6, num_heads=8, d_kv=64, d_ff=2048))
    small.tie_weights()
    settings = resolve_settings(finetune.build_parser().parse_args(
        ["--task", "rte", "--recipe", "compacter++,bitfit", "--paper-search", "--output-dir", str(tmp_path)]))
    jobs = plan_jobs(settings, [get_task("rte")], small, {})
    labels = {job.recipe_name: [] for job in jobs}
    for job in jobs:
        labels[job.recipe_name].append(job.setting.label)
    assert len(labels["compacter++"]) == 5 * 3 * 3 and len(labels["bitfit"]) == 5
    assert "lr=0.003,options.bottleneck=16,options.n=16" in labels["compacter++"]
    assert labels["bitfit"][0] == "lr=3e-05"


def test_train_output_layer_is_the_table_7_variant_with_table_5_rates(tmp_path, capsys):
    data_dir, out = write_rte(tmp_path / "rte", train=8, validation=4), tmp_path / "out"
    assert finetune.main(run_args(data_dir, out, "--train-output-layer", recipe="adapter")) == 0
    printed = capsys.readouterr().out
    result = RunResult.load(out / "rte" / "adapter+output-layer" / "seed-42" / "result.json")
    vocabulary = len(embedded_tokenizer())
    plain = surgery.plan(tiny_architecture(), "adapter").trainable_parameters
    assert result.trainable_parameters == plain + vocabulary * 128  # the (tied) output layer: V × d_model
    assert "lr 0.003 (appendix Table 5 (T5-base, GLUE, output layer trained): Adapter)" in printed


@pytest.mark.parametrize("command", ["results", "sweep"])
def test_the_table_commands_refuse_a_folder_without_finished_runs_in_one_line(command, tmp_path, capsys):
    import importlib

    main = importlib.import_module(f"runners.finetune.{command}").main
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path)])
    assert stop.value.code == 2
    assert capsys.readouterr().err == f"error: no result.json found under {tmp_path}\n"
