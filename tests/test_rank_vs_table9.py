"""benchmarks/rank_vs_table9.py: a miniature Table 1's order of methods beside the paper's Table 9,
from run folders. Checked on made-up results whose order is known."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from runners.finetune.results import RunResult

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "rank_vs_table9.py"
spec = importlib.util.spec_from_file_location("rank_vs_table9", SCRIPT)
rank_vs_table9 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rank_vs_table9)


def write_runs(folder: Path, scores: dict[str, dict[str, list[float]]], seed: int = 1) -> None:
    for recipe, by_task in scores.items():
        for task, metrics in by_task.items():
            run = folder / task / recipe / f"seed-{seed}"
            run.mkdir(parents=True)
            RunResult(task, recipe, seed, {f"m{k}": value for k, value in enumerate(metrics)}).save(run)


def test_paper_order_gives_rho_one_and_a_task_short_recipe_is_left_out(tmp_path, capsys):
    # full-finetune > adapter > bitfit in Table 9; the miniature keeps that order, prompt-tuning-r lacks a task.
    write_runs(tmp_path / "a", {"full-finetune": {"t1": [80.0], "t2": [60.0, 70.0]},
                                "adapter": {"t1": [70.0], "t2": [50.0, 60.0]},
                                "bitfit": {"t1": [10.0], "t2": [20.0, 30.0]},
                                "prompt-tuning-r": {"t1": [99.0]}})
    assert rank_vs_table9.main([str(tmp_path / "a")]) == 0
    printed = capsys.readouterr().out
    assert "left out, no score on t2: prompt-tuning-r" in printed
    assert "Spearman's rho 1.000, Kendall's tau 1.000 over 3 methods" in printed
    assert "| full-finetune | 82.71 | 1 | 72.5 | 1 |" in printed  # (80 + (60 + 70) / 2) / 2


def test_seeds_are_averaged_and_a_reversed_order_gives_minus_one(tmp_path, capsys):
    write_runs(tmp_path / "s1", {"full-finetune": {"t": [10.0]}, "adapter": {"t": [50.0]}, "bitfit": {"t": [90.0]}})
    write_runs(tmp_path / "s2", {"full-finetune": {"t": [20.0]}, "adapter": {"t": [60.0]}, "bitfit": {"t": [70.0]}},
               seed=2)
    assert rank_vs_table9.main([str(tmp_path / "s1"), str(tmp_path / "s2")]) == 0
    printed = capsys.readouterr().out
    assert "Spearman's rho -1.000, Kendall's tau -1.000" in printed and "| bitfit | 78.90 | 3 | 80.0 | 1 |" in printed


def test_one_run_twice_or_too_few_methods_is_refused(tmp_path, capsys):
    write_runs(tmp_path / "a", {"adapter": {"t": [1.0]}, "bitfit": {"t": [2.0]}})
    assert rank_vs_table9.main([str(tmp_path / "a")]) == 2
    assert "a ranking needs 3" in capsys.readouterr().err
    write_runs(tmp_path / "b", {"adapter": {"t": [1.0]}})
    with pytest.raises(SystemExit):
        rank_vs_table9.main([str(tmp_path / "a"), str(tmp_path / "b")])
    assert "appears twice" in capsys.readouterr().err
