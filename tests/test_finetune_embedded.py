"""The finetune runner's embedded defaults: the shipped pretrained model, its tasks and groups,
--recipe all, --random-init, and --jobs (runs side by side equal to runs one after another)."""

from __future__ import annotations

import argparse
import sys
import json

import pytest
import torch
from safetensors.torch import load_file

import surgery
from conftest import write_rte
from runners import finetune
from runners.finetune.cli import build_parser
from runners.finetune.invocation import resolve_settings
from runners.finetune.model import build_model
from runners.finetune.protocol import embedded_defaults
from runners.tasks import TASK_GROUPS, get_task
from runners.tasks.data import embedded_tokenizer

TINY = ["d_model=32", "d_kv=8", "d_ff=64", "num_layers=1", "num_heads=4"]


def resolved(argv: list[str]):
    return resolve_settings(build_parser().parse_args(argv))


def test_defaults_are_compacter_on_the_embedded_sentiment_task(tmp_path):
    settings = resolved(["--output-dir", str(tmp_path / "o")])
    assert settings.tasks == ["embedded-sst2"] and settings.recipes is None
    assert settings.options.get("model") is None  # the shipped embedded model


def test_groups_and_all_expand(tmp_path):
    settings = resolved(["--task", "embedded-glue", "--recipe", "all", "--output-dir", str(tmp_path / "o")])
    assert settings.tasks == list(TASK_GROUPS["embedded-glue"]) and len(settings.tasks) == 5
    assert settings.recipes == surgery.bundled_recipes() and "compacter++-drop" in settings.recipes


def test_embedded_learning_rates_are_the_validation_search_choices():
    # The best validation score of lr ∈ {3e-4, 3e-3, 3e-2} on embedded-sst2 (runners/embedded/README.md):
    # the Compacters 3e-2, full fine-tuning 3e-4, the other searched methods 3e-3; prompt tuning 3e-2.
    expected = {"adapter": 3e-3, "adapterdrop": 3e-3, "bitfit": 3e-3, "full-finetune": 3e-4, "pfeiffer-adapter": 3e-3,
                "adapter-lowrank": 3e-3, "phm-adapter": 3e-3, "intrinsic-said": 3e-3, "compacter": 3e-2,
                "compacter++": 3e-2, "compacter++-drop": 3e-2, "prompt-tuning-r": 3e-2, "prompt-tuning-t": 3e-2}
    assert {recipe: embedded_defaults(recipe)["learning_rate"] for recipe in expected} == expected
    assert set(expected) == set(surgery.bundled_recipes())  # every bundled recipe has its searched rate
    # With the output layer trained (not searched here), the paper's table for that setting.
    with_output = dict(surgery.load_recipe("adapter").source, train=["layer_norms", "output_layer"])
    assert embedded_defaults(with_output)["sources"]["learning_rate"].startswith("appendix Table 5")


def test_random_init_keeps_the_architecture_and_draws_new_weights():
    tokenizer = embedded_tokenizer()
    pretrained = build_model(None, tokenizer, seed=1)
    random = build_model(None, tokenizer, seed=1, random_init=True)
    assert pretrained.config.to_dict() == random.config.to_dict()
    shared = [(a, b) for a, b in zip(pretrained.parameters(), random.parameters())]
    assert len(shared) == len(list(random.parameters())) and not any(torch.equal(a, b) for a, b in shared)


def test_random_init_with_init_config_is_refused(tmp_path, capsys):
    code = finetune.main(["--random-init", "--init-config", *TINY, "--output-dir", str(tmp_path / "o")])
    assert code == 2 and "--init-config" in capsys.readouterr().err


def test_jobs_side_by_side_equal_jobs_one_after_another(tmp_path, jobs_workers_share_imports):
    data_dir = write_rte(tmp_path / "rte")
    common = ["--task", "rte", "--data-dir", str(data_dir), "--init-config", *TINY, "--recipe", "adapter,bitfit",
              "--epochs", "2", "--batch-size", "8", "--lr", "3e-3", "--warmup-steps", "2", "--seeds", "1",
              "--no-progress"]
    assert finetune.main([*common, "--output-dir", str(tmp_path / "one")]) == 0
    assert finetune.main([*common, "--output-dir", str(tmp_path / "two"), "--jobs", "2"]) == 0
    runs = sorted(path.relative_to(tmp_path / "one") for path in (tmp_path / "one").rglob("result.json"))
    assert len(runs) == 2
    for run in runs:
        alone, side_by_side = (json.loads((tmp_path / side / run).read_text()) for side in ("one", "two"))
        assert alone["test"] == side_by_side["test"] and alone["validation"] == side_by_side["validation"]
        best = run.parent / "best" / "t5_surgery_adapter.safetensors"
        a, b = load_file(tmp_path / "one" / best), load_file(tmp_path / "two" / best)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert len(list((tmp_path / "two" / "console").iterdir())) == 2  # one console log per run
    assert (tmp_path / "one" / "results.md").read_text() == (tmp_path / "two" / "results.md").read_text()
    pytest.importorskip("matplotlib")
    assert (tmp_path / "one" / "figure1.png").stat().st_size > 10_000  # two recipes: the Figure 1 plot


def test_adapterdrop_on_a_shallow_model_keeps_the_share_of_skipped_blocks(tmp_path):
    # The recipes skip 5 of T5-base's 12 blocks; the embedded T5 has 3 a stack, where "skip 5" is
    # invalid: the runner skips round(5 · 3 / 12) = 1 and says so; the engine then adapts blocks 1, 2.
    from runners.finetune.jobs import plan_jobs
    from runners.finetune.run import meta_model

    settings = resolved(["--recipe", "adapterdrop,compacter++-drop,compacter++", "--output-dir", str(tmp_path / "o")])
    architecture = meta_model(None, embedded_tokenizer(), {})
    notes: list[str] = []
    jobs = plan_jobs(settings, [get_task("embedded-sst2")], architecture, {"embedded-sst2": settings.recipes}, notes=notes)
    layers = {job.recipe_label: job.recipe["layers"] for job in jobs}
    assert layers["adapterdrop"] == {"encoder": {"skip_first": 1}, "decoder": {"skip_first": 1}}
    assert layers["compacter++-drop"] == layers["adapterdrop"] and layers["compacter++"] == "all"
    assert [note for note in notes if "skip_first 5" in note] and all("adapterdrop" in n or "drop" in n for n in notes)
    assert surgery.plan(architecture, jobs[0].recipe).layers == {"encoder": [1, 2], "decoder": [1, 2]}
    with pytest.raises(surgery.RecipeError, match="skip_first"):  # the engine alone still refuses it
        surgery.plan(architecture, "adapterdrop")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's (prctl)")
def test_jobs_workers_stop_when_their_parent_is_killed(tmp_path):
    # A parent killed outright (SIGKILL: no handler runs) must not leave its --jobs workers training.
    import os
    import signal
    import subprocess
    import time
    from pathlib import Path

    def children(pid: int) -> set[int]:
        found = set()
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.add(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
        return found

    def alive(pid: int) -> bool:
        try:
            state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        return state != "Z"

    data_dir = write_rte(tmp_path / "rte", train=40, validation=8)
    parent = subprocess.Popen(
        [sys.executable, "-m", "runners.finetune", "--task", "rte", "--data-dir", str(data_dir), "--init-config", *TINY,
         "--recipe", "adapter,bitfit", "--epochs", "500", "--jobs", "2", "--no-progress",
         "--output-dir", str(tmp_path / "out")],
        cwd=Path(__file__).resolve().parents[1], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(list((tmp_path / "out" / "console").glob("run-*.log")) if (tmp_path / "out" / "console").is_dir() else []) < 2:
            assert time.monotonic() < deadline and parent.poll() is None, "the runs did not start"
            time.sleep(0.5)
        workers = children(parent.pid)
        assert workers, "no worker processes found"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 60
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not any(alive(pid) for pid in workers), "workers outlived their parent"
    finally:
        if parent.poll() is None:
            parent.kill()
