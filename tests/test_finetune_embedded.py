"""The finetune runner's embedded defaults: the shipped pretrained model, its tasks and groups,
--recipe all, --random-init, and --jobs (runs side by side equal to runs one after another)."""

from __future__ import annotations

import sys
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import surgery
from conftest import write_rte
from runners import finetune
from runners.finetune.cli import build_parser
from runners.finetune.invocation import resolve_settings
from runners.finetune.model import build_model
from runners.embedded.world2 import BENCHMARK_DIR as WORLD2_BENCHMARK_DIR
from runners.embedded.world2 import MODEL_DIR as WORLD2_MODEL_DIR
from runners.finetune.protocol import embedded_defaults, paper_defaults
from runners.tasks import TASK_GROUPS, get_task
from runners.tasks.data import embedded_tokenizer

TINY = ["d_model=32", "d_kv=8", "d_ff=64", "num_layers=1", "num_heads=4"]


def resolved(argv: list[str]):
    return resolve_settings(build_parser().parse_args(argv))


def test_defaults_are_compacter_on_world2_sentiment_with_world2_model(tmp_path):
    settings = resolved(["--output-dir", str(tmp_path / "o")])
    assert settings.tasks == ["world2-sst2"] and settings.recipes is None
    assert Path(settings.options["model"]) == WORLD2_MODEL_DIR  # the model whose corpus explains its test words


def test_a_task_trains_the_shipped_model_it_is_written_for(tmp_path):
    world1 = resolved(["--task", "embedded-glue", "--output-dir", str(tmp_path / "a")])
    assert world1.options.get("model") is None  # the runner's default: world 1's embedded T5
    world2 = resolved(["--task", "world2-glue", "--random-init", "--output-dir", str(tmp_path / "b")])
    assert world2.tasks == list(TASK_GROUPS["world2-glue"]) and Path(world2.options["model"]) == WORLD2_MODEL_DIR
    given = resolved(["--task", "world2-sst2", "--model", "t5-small", "--output-dir", str(tmp_path / "c")])
    assert given.options["model"] == "t5-small"  # --model wins
    tiny = resolved(["--task", "world2-sst2", "--init-config", *TINY, "--output-dir", str(tmp_path / "d")])
    assert tiny.options.get("model") is None  # --init-config sizes a random-init model: no folder to load
    # ... that reads world 2's words with world 2's tokenizer (every word one piece), not world 1's
    from runners.finetune.model import load_tokenizer, tokenizer_folder
    tokenizer = load_tokenizer(tokenizer_folder(tiny.options, [get_task("world2-sst2").model_dir]))
    assert len(tokenizer) == 1406 and len(tokenizer.tokenize("snipaim")) < len(embedded_tokenizer().tokenize("snipaim"))


def test_tasks_of_two_shipped_models_in_one_invocation_are_refused(tmp_path, capsys):
    code = finetune.main(["--task", "world2-sst2,embedded-sst2", "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "world2-sst2: runners/embedded/world2/model" in err and "give --model" in err
    assert not (tmp_path / "o").exists()  # refused before anything was written
    # a random-init model too: its one tokenizer cannot be both worlds'
    code = finetune.main(["--task", "world2-sst2,embedded-sst2", "--init-config", *TINY, "--output-dir", str(tmp_path / "t")])
    assert code == 2 and "give --model" in capsys.readouterr().err and not (tmp_path / "t").exists()


def test_the_main_job_trains_world2_model_on_world2_sst2(tmp_path):
    out = tmp_path / "o"
    assert finetune.main(["--stop-after-steps", "1", "--no-progress", "--output-dir", str(out)]) == 0
    saved = json.loads((out / "arguments.json").read_text())
    assert Path(saved["model"]) == WORLD2_MODEL_DIR and saved["task"] == "world2-sst2" and saved["lr"] == 3e-2
    assert (out / "world2-sst2" / "compacter++" / "seed-42" / "last").is_dir()
    # --resume gives the same model back without --model (the saved folder, not a default looked up again)
    assert finetune.main(["--resume", str(out), "--stop-after-steps", "2", "--no-progress"]) == 0


def test_a_missing_shipped_model_is_one_line_naming_its_folder(tmp_path, monkeypatch, capsys):
    import dataclasses

    from runners.tasks import registry
    moved = dataclasses.replace(get_task("world2-sst2"), model_dir=tmp_path / "model")  # no config.json there
    monkeypatch.setitem(registry._BY_KEY, registry._key("world2-sst2"), moved)
    code = finetune.main(["--task", "world2-sst2", "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "holds no model" in err and str(tmp_path / "model") in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_world2_tasks_follow_the_embedded_protocol_and_their_files():
    for name in TASK_GROUPS["world2-glue"]:
        task = get_task(name)
        assert task.benchmark == "embedded" and task.local_dir.parent == WORLD2_BENCHMARK_DIR
        assert task.model_dir == WORLD2_MODEL_DIR and task.metric_names == get_task(name.replace("world2", "embedded")).metric_names
    assert embedded_defaults("compacter++")["learning_rate"] == paper_defaults(get_task("world2-sst2"), "compacter++")["learning_rate"]


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


def test_jobs_runs_use_one_thread_each_or_what_threads_says_and_the_record_says_so(tmp_path, jobs_workers_share_imports,
                                                                                   capsys):
    # The record once gave the parent's thread count (2 on an idle 2-core machine) for runs that used 1.
    data_dir = write_rte(tmp_path / "rte")
    common = ["--task", "rte", "--data-dir", str(data_dir), "--init-config", *TINY, "--recipe", "bitfit",
              "--epochs", "1", "--batch-size", "8", "--seeds", "1", "2", "--jobs", "2", "--no-progress"]
    for threads, extra in ((1, []), (2, ["--threads", "2"])):
        out = tmp_path / f"threads-{threads}"
        assert finetune.main([*common, *extra, "--output-dir", str(out)]) == 0
        assert json.loads((out / "arguments.json").read_text())["threads"] == threads
        word = "thread" if threads == 1 else "threads"
        assert f"2 at a time ({threads} CPU {word} each)" in capsys.readouterr().out
        for log in sorted((out / "console").iterdir()):
            assert f"device cpu ({threads} {word})" in log.read_text()
