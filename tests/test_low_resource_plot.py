"""The Figure-4 tool (`python -m runners.plot_low_resource`): its points, table, filters and refusals.

The expected numbers are worked out by hand below (task scores chosen so that every mean and
standard deviation is exact), not by the code under test.
"""

from __future__ import annotations

import shutil

import pytest

from runners import plot_low_resource
from runners.finetune.results import RunResult


def _save(root, task, recipe, seed, test, size):
    folder = root / task / recipe / f"seed-{seed}"
    folder.mkdir(parents=True)
    RunResult(task, recipe, seed, test, train_examples=size, output_dir=str(folder)).save(folder)


@pytest.fixture
def runs(tmp_path):
    """compacter++ at 100 examples, 3 seeds × 2 tasks (one task with two metrics); full FT at 100 and 2000."""
    low = tmp_path / "low-resource-100"
    # seed: (task a accuracy, task b f1/accuracy) → the seed's average over tasks
    # 1: (60, 80/80) → 70;  2: (70, 95/85) → 80;  3: (65, 90/80) → 75  ⇒ mean 75, sample std 5
    for seed, a, (f1, accuracy) in ((1, 60.0, (80.0, 80.0)), (2, 70.0, (95.0, 85.0)), (3, 65.0, (90.0, 80.0))):
        _save(low, "a", "compacter++", seed, {"accuracy": a}, 100)
        _save(low, "b", "compacter++", seed, {"f1": f1, "accuracy": accuracy}, 100)
    _save(low, "a", "full-finetune", 1, {"accuracy": 50.0}, 100)
    _save(low, "b", "full-finetune", 1, {"f1": 70.0, "accuracy": 60.0}, 100)   # → (50 + 65) / 2 = 57.5
    table1 = tmp_path / "table1"
    _save(table1, "a", "full-finetune", 1, {"accuracy": 90.0}, 2000)
    _save(table1, "b", "full-finetune", 1, {"f1": 80.0, "accuracy": 80.0}, 2000)  # → 85
    _save(table1, "a", "bitfit", 1, {"accuracy": 10.0}, 2000)
    return low, table1


def test_points_are_the_mean_and_sample_std_over_seeds_of_the_task_averages(runs):
    low, table1 = runs
    lines = plot_low_resource.curves(plot_low_resource.collect([low, table1]))
    assert lines["compacter++"] == [(100, pytest.approx(75.0), pytest.approx(5.0), 3)]
    assert lines["full-finetune"] == [(100, pytest.approx(57.5), 0.0, 1), (2000, pytest.approx(85.0), 0.0, 1)]


def test_the_command_writes_the_plot_and_the_table_of_the_chosen_recipes(runs, tmp_path, capsys):
    low, table1 = runs
    figure, table = tmp_path / "figure4.png", tmp_path / "figure4.md"
    code = plot_low_resource.main([str(low), str(table1), "--output", str(figure), "--table", str(table),
                                   "--recipe", "compacter++,full-finetune"])
    assert code == 0
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 10_000
    assert table.read_text(encoding="utf-8").splitlines() == [
        "| training examples per task | 100 | 2,000 |",
        "| --- | --- | --- |",
        "| compacter++ | 75.0 ± 5.0 (3 seeds) |  |",
        "| full-finetune | 57.5 ± 0.0 (1 seed) | 85.0 ± 0.0 (1 seed) |",
    ]
    assert "bitfit" not in capsys.readouterr().out


def test_the_same_run_given_twice_is_refused_not_averaged_in(runs, tmp_path, capsys):
    low, _ = runs
    shutil.copytree(low / "a", tmp_path / "copy" / "a")
    with pytest.raises(SystemExit) as exit_:
        plot_low_resource.main([str(low), str(tmp_path / "copy"), "--output", str(tmp_path / "x.png")])
    assert exit_.value.code == 2
    message = capsys.readouterr().err
    assert "compacter++ on a with 100 examples, seed 1, is in two result files" in message
    assert not (tmp_path / "x.png").exists()


def test_no_runs_of_the_chosen_recipes_is_one_clear_error(runs, tmp_path, capsys):
    low, _ = runs
    with pytest.raises(SystemExit) as exit_:
        plot_low_resource.main([str(low), "--recipe", "adapter", "--output", str(tmp_path / "x.png")])
    assert exit_.value.code == 2
    assert "no result.json of adapter with a training-set size under" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_a_named_recipe_without_runs_is_refused_naming_it_and_what_was_found(runs, tmp_path, capsys):
    low, _ = runs
    with pytest.raises(SystemExit) as exit_:
        plot_low_resource.main([str(low), "--recipe", "compacter++,ful-finetune", "--output", str(tmp_path / "x.png")])
    assert exit_.value.code == 2
    message = capsys.readouterr().err
    assert "no result.json of ful-finetune with a training-set size under" in message
    assert "(found: compacter++)" in message
    assert not (tmp_path / "x.png").exists()
