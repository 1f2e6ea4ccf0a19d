"""runners.finetune under bad invocations: exit 2 with one line of message, nothing overwritten,
nothing written outside --output-dir; runs that never share a folder; a NaN loss that stops.

Every test passes an explicit --task and a tiny --init-config, so none depends on the defaults.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import runners.finetune.run
import runners.finetune.training
from conftest import write_rte
from runners import finetune
from runners.finetune.jsonl_log import read_jsonl
from runners.finetune.results import RunResult
from surgery.checkpoint import WEIGHTS_FILE

ROOT = Path(__file__).resolve().parents[1]
TINY = ["d_model=32", "d_kv=8", "d_ff=64", "num_layers=1", "num_heads=4"]


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return write_rte(tmp_path / "rte", train=16, validation=8)


def run_args(data_dir: Path, out: Path, *extra: str, recipe: str = "adapter", init: list[str] = TINY) -> list[str]:
    return ["--task", "rte", "--data-dir", str(data_dir), "--init-config", *init, "--recipe", recipe,
            "--epochs", "1", "--batch-size", "8", "--lr", "3e-3", "--warmup-steps", "0", "--output-dir", str(out),
            "--no-progress", *extra]


def exits_2_with_one_line(argv: list[str], capsys, *needles: str) -> str:
    assert finetune.main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("error: "), error
    assert "Traceback" not in error
    for needle in needles:
        assert needle in error, (needle, error)
    return error


def write_recipe(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


# ---- recipes that must fail before training ---------------------------------------------------------------------

RECIPES = {
    "dense-inf": ("method: adapter\nsites: [after_ffn]\noptions: {bottleneck: 2, dense_init_std: .inf}\n", "options.dense_init_std"),
    "rule-inf": ("method: adapter\nsites: [after_ffn]\noptions: {bottleneck: 2, projection: phm, n: 2, rule_init_std: inf}\n",
                 "options.rule_init_std"),
    "rule-negative": ("method: adapter\nsites: [after_ffn]\noptions: {bottleneck: 2, projection: phm, n: 2, rule_init_std: -1}\n",
                      "options.rule_init_std"),
    "prompt-inf": ("method: prompt_tuning\noptions: {length: 2, init_std: .inf}\n", "options.init_std"),
    "said-huge": ("method: intrinsic_said\noptions: {dimension: 1000000000000}\n", "options.dimension"),
    "said-1e12": ("method: intrinsic_said\noptions: {dimension: 1.0e12}\n", "options.dimension"),
    "bitfit-layers": ("method: bitfit\nlayers: {encoder: [0]}\n", "'layers'"),
    "wide-bottleneck": ("method: adapter\nsites: [after_ffn]\noptions: {bottleneck: 64}\n", "options.bottleneck"),
}


@pytest.mark.parametrize("name", RECIPES)
def test_a_recipe_that_cannot_work_exits_2_before_anything_is_written(tmp_path, data_dir, capsys, name):
    body, key = RECIPES[name]
    recipe = write_recipe(tmp_path, name, body)
    exits_2_with_one_line(run_args(data_dir, tmp_path / "out", recipe=str(recipe)), capsys, key)
    assert not (tmp_path / "out").exists()


def test_a_recipe_file_that_is_not_text(tmp_path, data_dir, capsys):
    recipe = tmp_path / "binary.yaml"
    recipe.write_bytes(b"method: adapter\n\xff\xfe\x00")
    exits_2_with_one_line(run_args(data_dir, tmp_path / "out", recipe=str(recipe)), capsys, "not a UTF-8 text file")


# ---- arguments -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, needle", [
    (["--seed", "-5"], "--seed -5"),
    (["--seed", str(2**40)], "--seed 1099511627776"),
    (["--seeds", "1", "-2"], "--seeds -2"),
    (["--lr", "inf"], "--lr inf"),
    (["--lr", "nan"], "--lr nan"),
    (["--dropout", "1.5"], "--dropout 1.5"),
    (["--epochs", "0"], "--epochs 0"),
    (["--max-source-length", str(2**40)], "--max-source-length"),
    (["--threads", "100000"], "--threads"),
    (["--task", ""], "--task ''"),
    (["--task", "rte,"], "empty name"),
    (["--recipe", ""], "--recipe ''"),
    (["--data-dir", "/nonexistent/folder"], "--data-dir"),
])
def test_bad_arguments(tmp_path, data_dir, capsys, change, needle):
    argv = run_args(data_dir, tmp_path / "out")
    flag = change[0]
    if flag in argv:
        index = argv.index(flag)
        del argv[index:index + 2]
    exits_2_with_one_line([*argv, *change], capsys, needle)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("item, needle", [
    ("d_model=abc", "d_model=abc: give a whole number"),
    ("vocab_size=10", "the tokenizer has"),
    ("num_heads=0", "num_heads=0: give a value in [1"),
    ("dropout_rate=2", "dropout_rate=2: give a value in [0, 1)"),
    ("feed_forward_proj=bogus", "feed_forward_proj=bogus: not valid"),
    ("d_model=1048576 vocab_size=16777216", "more than the"),
    ("architectures=x", "not a field of the random-init model"),
    ("num_layers=1 num_layers=2", "given twice"),
])
def test_bad_init_config(tmp_path, data_dir, capsys, item, needle):
    items = item.split()
    init = [kept for kept in TINY if kept.partition("=")[0] != items[0].partition("=")[0]] + items
    exits_2_with_one_line(run_args(data_dir, tmp_path / "out", init=init), capsys, needle)
    assert not (tmp_path / "out").exists()


def test_output_dir_that_is_a_file_or_cannot_be_written(tmp_path, data_dir, capsys):
    (tmp_path / "a-file").write_text("keep")
    exits_2_with_one_line(run_args(data_dir, tmp_path / "a-file"), capsys, "is a file")
    exits_2_with_one_line(run_args(data_dir, tmp_path / "a-file" / "inside"), capsys, "is a file")
    assert (tmp_path / "a-file").read_text() == "keep"
    if Path("/sys/kernel").is_dir():  # refuses new folders even to root
        exits_2_with_one_line(run_args(data_dir, Path("/sys/kernel/t5-surgery-test")), capsys, "--output-dir")


def test_a_folder_of_other_files_is_not_written_into(tmp_path, data_dir, capsys):
    out = tmp_path / "out"
    (out / "rte" / "adapter" / "seed-42").mkdir(parents=True)
    (out / "rte" / "adapter" / "seed-42" / "log.jsonl").write_text('{"stale": true}\n')
    before = tree(out)
    exits_2_with_one_line(run_args(data_dir, out), capsys, "not an output folder")
    assert tree(out) == before and (out / "rte" / "adapter" / "seed-42" / "log.jsonl").read_text() == '{"stale": true}\n'


def test_interrupt_during_start_up_exits_130_without_a_traceback(tmp_path, data_dir, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("runners.tasks.data.load_task_splits", interrupted)
    assert finetune.main(run_args(data_dir, tmp_path / "out")) == 130
    error = capsys.readouterr().err
    assert "interrupted" in error and "Traceback" not in error


# ---- folders that never clash ----------------------------------------------------------------------------------

def test_a_recipe_name_cannot_escape_the_output_dir(tmp_path, data_dir, capsys):
    recipe = write_recipe(tmp_path, "sneaky", "name: ../../escaped\nmethod: adapter\nsites: [after_ffn]\noptions: {bottleneck: 2}\n")
    out = tmp_path / "deep" / "out"
    before = set(os.listdir(tmp_path))
    assert finetune.main(run_args(data_dir, out, recipe=str(recipe))) == 0
    assert "written as the folder name 'escaped'" in capsys.readouterr().out
    assert set(os.listdir(tmp_path)) == before | {"deep"} and os.listdir(tmp_path / "deep") == ["out"]
    assert (out / "rte" / "escaped" / "seed-42" / "result.json").is_file()


def test_two_recipes_with_one_name_get_two_folders_and_two_rows(tmp_path, data_dir, capsys):
    first = write_recipe(tmp_path, "first", "name: mine\nmethod: adapter\nsites: [after_ffn]\noptions: {bottleneck: 2}\n")
    second = write_recipe(tmp_path, "second", "name: mine\nmethod: adapter\nsites: [after_ffn]\noptions: {bottleneck: 4}\n")
    out = tmp_path / "out"
    assert finetune.main(run_args(data_dir, out, recipe=f"{first},{second}")) == 0
    printed = capsys.readouterr().out
    assert "different recipes share the name 'mine'" in printed
    folders = sorted(p.name for p in (out / "rte").iterdir())
    assert len(folders) == 2 and all(f.startswith("mine-") for f in folders)
    results = [RunResult.load(out / "rte" / f / "seed-42" / "result.json") for f in folders]
    assert sorted(r.trainable_parameters for r in results) != [results[0].trainable_parameters] * 2
    table = (out / "results.md").read_text()
    assert all(f"| {f} |" in table for f in folders) and "±" not in table


@pytest.mark.parametrize("change, note, folders", [
    (["--recipe", "adapter,adapter"], "--recipe 'adapter' is given twice", ["rte/adapter/seed-42"]),
    (["--recipe", "adapter,adapter.yaml"], "--recipe 'adapter' and 'adapter.yaml' are the same", ["rte/adapter/seed-42"]),
    (["--seeds", "1", "1"], "--seeds '1' is given twice", ["rte/adapter/seed-1"]),
    (["--task", "rte,RTE"], "--task 'rte' and 'RTE' are the same", ["rte/adapter/seed-42"]),
])
def test_repeats_run_once_with_a_note(tmp_path, data_dir, capsys, change, note, folders):
    argv = run_args(data_dir, tmp_path / "out")
    index = argv.index(change[0]) if change[0] in argv else None
    if index is not None:
        del argv[index:index + 2]
    assert finetune.main([*argv, *change]) == 0
    printed = capsys.readouterr().out
    assert f"note: {note}" in printed and "run 1/1" in printed
    runs = sorted(str(p.parent.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("result.json"))
    assert runs == folders


def test_a_second_process_cannot_train_into_a_folder_in_use(tmp_path, data_dir, capsys):
    out = tmp_path / "out"
    assert finetune.main(run_args(data_dir, out, "--stop-after-steps", "1")) == 0
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file() and path.name != ".lock"}
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from runners.finetune.lock import OutputLock; "
         f"lock = OutputLock({str(out)!r}); lock.acquire(); print('locked', flush=True); time.sleep(60)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        exits_2_with_one_line(["--resume", str(out), "--no-progress"], capsys, "is in use by another", f"pid {holder.pid}")
        exits_2_with_one_line(run_args(data_dir, out, "--overwrite"), capsys, "is in use by another")
    finally:
        holder.kill()
        holder.wait()
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file() and path.name != ".lock"} == before
    assert finetune.main(["--resume", str(out), "--no-progress"]) == 0  # the lock went with its process


def test_a_resumed_folder_never_takes_a_changed_recipe(tmp_path, data_dir, capsys):
    recipe = write_recipe(tmp_path, "mine", "method: adapter\nsites: [after_ffn]\noptions: {bottleneck: 2}\n")
    out = tmp_path / "out"
    assert finetune.main(run_args(data_dir, out, "--stop-after-steps", "1", recipe=str(recipe))) == 0
    recipe.write_text("method: adapter\nsites: [after_ffn]\noptions: {bottleneck: 4}\n")
    exits_2_with_one_line(["--resume", str(out), "--no-progress"], capsys, "its recipe changed")


# ---- damaged resumable state -----------------------------------------------------------------------------------

def _interrupted(tmp_path, data_dir) -> Path:
    out = tmp_path / "out"
    assert finetune.main(run_args(data_dir, out, "--stop-after-steps", "1")) == 0
    return out


@pytest.mark.parametrize("damage, needle", [
    (lambda run: (run / "last" / "training_state.pt").write_bytes((run / "last" / "training_state.pt").read_bytes()[:100]),
     "training_state.pt is damaged"),
    (lambda run: (run / "last" / WEIGHTS_FILE).write_bytes((run / "last" / WEIGHTS_FILE).read_bytes()[:-40]), WEIGHTS_FILE),
    (lambda run: (run / "last" / "rng_state_rank0.pt").write_bytes(b"\x80garbage"), "rng_state_rank0.pt is damaged"),
    (lambda run: (run.parents[2] / "arguments.json").write_text("{not json"), "arguments.json is damaged"),
    (lambda run: (run.parents[2] / "arguments.json").write_text('{"seed": -3}'), "--seed -3"),
])
def test_resume_of_a_damaged_run_exits_2(tmp_path, data_dir, capsys, damage, needle):
    out = _interrupted(tmp_path, data_dir)
    run = out / "rte" / "adapter" / "seed-42"
    damage(run)
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file() and path.name != ".lock"}
    exits_2_with_one_line(["--resume", str(out), "--no-progress"], capsys, needle)
    after = {path: path.read_bytes() for path in out.rglob("*") if path.is_file() and path.name != ".lock"}
    assert after == before


# ---- a loss that becomes NaN -----------------------------------------------------------------------------------

def test_a_non_finite_loss_stops_with_exit_2_naming_the_step_and_keeps_the_last_good_checkpoint(
        tmp_path, data_dir, capsys, monkeypatch):
    original, calls = runners.finetune.training._token_loss_sum, {"count": 0}

    def nan_on_the_third_step(*args, **kwargs):
        calls["count"] += 1
        loss = original(*args, **kwargs)
        return loss * float("nan") if calls["count"] == 3 else loss  # micro-batch 3 = step 3 (no accumulation)

    monkeypatch.setattr(runners.finetune.training, "_token_loss_sum", nan_on_the_third_step)
    out = tmp_path / "out"
    argv = run_args(data_dir, out, "--save-every-steps", "1", "--log-every", "1", "--epochs", "2")
    exits_2_with_one_line(argv, capsys, "non-finite training loss nan at step 3", "step 2", "is kept")
    run = out / "rte" / "adapter" / "seed-42"
    state = torch.load(run / "last" / "training_state.pt", weights_only=False)
    assert state["progress"]["global_step"] == 2
    assert [r["step"] for r in read_jsonl(run / "log.jsonl") if r["event"] == "train"] == [1, 2]
    assert not (run / "result.json").exists()


def test_a_huge_learning_rate_ends_in_exit_2_not_a_nan_result(tmp_path, data_dir, capsys):
    """--lr 1e30 is finite, so it passes the argument check; the first update blows the adapter up."""
    out = tmp_path / "out"
    exits_2_with_one_line(run_args(data_dir, out, "--lr", "1e30", "--epochs", "3"), capsys, "non-finite training loss")
    assert not list(out.rglob("result.json")) and not (out / "results.md").exists()
