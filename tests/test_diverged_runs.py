"""A run whose loss blows up is one run's result, not the invocation's end: in a sweep over the paper's
grid the highest rates often diverge, and the other settings must still train, be tabulated and be
chosen from. A lone run that diverges still exits 2 with one line (test_finetune_robustness.py).

Every test uses a tiny --init-config model on a few RTE rows; --lr 1e30 is finite, so it passes the
argument check, and its first update makes the loss non-finite.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from conftest import write_rte
from runners import finetune
from runners.finetune import results as results_command
from runners.finetune import sweep as sweep_command
from runners.finetune.parallel import run_in_processes

TINY = ["d_model=32", "d_kv=8", "d_ff=64", "num_layers=1", "num_heads=4"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def data_dir(tmp_path):
    return write_rte(tmp_path / "rte", train=16, validation=8)


def sweep_args(data_dir, out, *extra: str) -> list[str]:
    return ["--task", "rte", "--data-dir", str(data_dir), "--init-config", *TINY, "--recipe", "adapter",
            "--sweep", "lr=3e-3,1e30", "--epochs", "1", "--batch-size", "8", "--warmup-steps", "0", "--seeds", "1",
            "--output-dir", str(out), "--no-progress", *extra]


def run_folder(out, rate: str):
    return out / "rte" / "adapter" / f"lr={rate}" / "seed-1"


def exits_2(argv, capsys) -> tuple[str, str]:
    assert finetune.main(argv) == 2
    captured = capsys.readouterr()
    error = captured.err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("error: ") and "Traceback" not in error, error
    return captured.out, error


def test_a_diverging_setting_is_listed_and_the_other_settings_finish(tmp_path, data_dir, capsys):
    out = tmp_path / "out"
    printed, error = exits_2(sweep_args(data_dir, out), capsys)
    assert "1 of 2 runs diverged" in error and "diverged.json" in error
    finished, diverged = run_folder(out, "3e-3"), run_folder(out, "1e30")
    assert (finished / "result.json").is_file() and not (finished / "diverged.json").exists()
    assert (diverged / "diverged.json").is_file() and not (diverged / "result.json").exists()
    record = json.loads((diverged / "diverged.json").read_text())
    assert (record["task"], record["recipe"], record["seed"], record["setting"]) == ("rte", "adapter", 1, "lr=1e30")
    assert record["reason"].startswith("non-finite training loss")
    table = (out / "results.md").read_text()
    chosen = table.split("## Every setting")[0]
    assert "lr=3e-3 (best of 1)" in chosen and "1e30" not in chosen  # the choice is among the finished settings
    assert "## Diverged (no score)" in table and "| adapter [lr=1e30] | rte | 1 | non-finite training loss" in table
    assert "## Diverged (no score)" in printed


def test_resume_does_not_train_a_diverged_run_again(tmp_path, data_dir, capsys):
    out = tmp_path / "out"
    exits_2(sweep_args(data_dir, out), capsys)
    log = run_folder(out, "1e30") / "log.jsonl"
    before = log.read_bytes()
    printed, error = exits_2(["--resume", str(out), "--no-progress"], capsys)
    assert "diverged earlier" in printed and "1 of 2 runs diverged" in error
    assert log.read_bytes() == before


def test_a_lone_run_of_a_sweep_that_diverges_is_the_invocations_error(tmp_path, data_dir, capsys):
    argv = sweep_args(data_dir, tmp_path / "out")
    argv[argv.index("lr=3e-3,1e30")] = "lr=1e30,1e31"
    _, error = exits_2(argv, capsys)
    assert error.startswith("error: run rte/adapter/lr=1e30/seed-1: non-finite training loss")
    assert "(1 more runs diverged too)" in error
    assert not (tmp_path / "out" / "results.md").exists()


def test_side_by_side_runs_report_a_divergence_and_finish_the_others(tmp_path, data_dir, capsys,
                                                                     jobs_workers_share_imports):
    exits_2(sweep_args(data_dir, tmp_path / "one"), capsys)
    printed, error = exits_2(sweep_args(data_dir, tmp_path / "two", "--jobs", "2"), capsys)
    assert "1 of 2 runs diverged" in error
    assert "rte · adapter · seed 1: diverged: non-finite training loss" in printed
    assert (tmp_path / "one" / "results.md").read_text() == (tmp_path / "two" / "results.md").read_text()


def test_the_table_commands_list_diverged_runs_and_refuse_one_run_twice(tmp_path, data_dir, capsys):
    out = tmp_path / "out"
    exits_2(sweep_args(data_dir, out), capsys)
    assert sweep_command.main([str(out)]) == 0
    printed = capsys.readouterr().out
    assert "lr=3e-3 (best of 1)" in printed and "| adapter [lr=1e30] | rte | 1 |" in printed
    assert results_command.main([str(out)]) == 0
    assert "| adapter [lr=1e30] | rte | 1 |" in capsys.readouterr().out
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    for command in (results_command, sweep_command):
        with pytest.raises(SystemExit) as stopped:
            command.main([str(out), str(copy)])
        assert stopped.value.code == 2
        error = capsys.readouterr().err
        assert "appears twice" in error and "two copies of one seed are not two seeds" in error


def test_a_failing_call_cancels_the_calls_not_started(tmp_path, jobs_workers_share_imports):
    (tmp_path / "exists").mkdir()
    later = [tmp_path / f"later-{k}" for k in range(6)]
    calls = [(str(tmp_path / "first"),), (str(tmp_path / "exists"),)] + [(str(path),) for path in later]
    with pytest.raises(FileExistsError):
        run_in_processes(os.mkdir, calls, workers=1)
    assert (tmp_path / "first").is_dir()
    # not even the calls already queued to the worker: the failing call said stop before it returned
    assert [path.name for path in later if path.exists()] == []


def test_after_an_interrupt_no_call_starts_not_even_one_already_queued(tmp_path, jobs_workers_share_imports):
    """Ctrl-C while a call runs: it finishes (a run stops itself at a step boundary), and the call the
    pool had already queued for the worker does not start (it used to: one more whole run)."""
    import signal
    import threading
    import time

    from processes import slow_mkdir

    first, queued, waiting = (str(tmp_path / name) for name in ("first", "queued", "waiting"))

    def interrupt_once_the_first_call_runs() -> None:
        deadline = time.monotonic() + 120
        while not os.path.exists(first + ".started") and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, to the parent alone

    interrupter = threading.Thread(target=interrupt_once_the_first_call_runs)
    interrupter.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_in_processes(slow_mkdir, [(first, 3.0), (queued, 0.0), (waiting, 0.0)], workers=1)
    finally:
        interrupter.join()
    assert os.path.isdir(first)
    assert not os.path.exists(queued + ".started") and not os.path.exists(waiting + ".started")


def test_a_call_that_says_stop_starts_no_further_call_and_is_the_last_reported(tmp_path, jobs_workers_share_imports):
    """A worker's run stopped by a signal says stop itself (its worker takes the next call before the
    parent has heard): the calls after it return NOT_STARTED, untouched, and on_done hears only of
    the calls that ran."""
    from processes import mkdir_and_maybe_stop

    from runners.finetune.parallel import NOT_STARTED

    paths = [str(tmp_path / f"call-{k}") for k in range(4)]
    reported = []
    results = run_in_processes(mkdir_and_maybe_stop, [(paths[0], False), (paths[1], True), (paths[2], False),
                                                      (paths[3], False)],
                               workers=1, on_done=lambda position, result: reported.append((position, result)))
    assert results == [paths[0], paths[1], NOT_STARTED, NOT_STARTED]
    assert sorted(reported) == [(0, paths[0]), (1, paths[1])]
    assert os.path.isdir(paths[1]) and not os.path.exists(paths[2]) and not os.path.exists(paths[3])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups and /proc")
def test_ctrl_c_stops_a_jobs_invocation_even_where_its_parent_ignores_sigint(tmp_path):
    """A script that starts the runner with & leaves SIGINT ignored in it: its workers still stop their
    runs with a checkpoint, and the invocation must stop there too rather than start the next runs."""
    import signal
    import subprocess
    import time

    data_dir = write_rte(tmp_path / "rte", train=40, validation=8)
    out = tmp_path / "out"
    runner = subprocess.Popen(
        [sys.executable, "-m", "runners.finetune", "--task", "rte", "--data-dir", str(data_dir), "--init-config", *TINY,
         "--recipe", "adapter", "--seeds", "1", "2", "3", "--epochs", "500", "--jobs", "2", "--no-progress",
         "--output-dir", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline = time.monotonic() + 120
        while len(list(out.rglob("log.jsonl"))) < 2:
            assert time.monotonic() < deadline and runner.poll() is None, "the runs did not start"
            time.sleep(0.5)
        time.sleep(2)  # a few steps into both runs
        os.killpg(runner.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
        printed, _ = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 130, printed
    assert "stopped: SIGINT" in printed and "--resume" in printed
    assert not (out / "rte" / "adapter" / "seed-3").exists()  # the third run never started
    for seed in (1, 2):
        assert (out / "rte" / "adapter" / f"seed-{seed}" / "last" / "training_state.pt").is_file()
