"""Starting a runner: --help and usage errors without the heavy imports; Ctrl-C during start-up.

Nothing here is timed (the times are in benchmarks/bench_startup.py): the tests check what is
imported, and what a runner interrupted in the middle of importing torch or matplotlib says.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "datasets", "surgery", "methods", "matplotlib")

# What a runner imports, seen from inside: its __main__ run as `python -m` does, then the heavy
# modules that are loaded by the time it exits are listed on stderr's last line.
PROBE = """
import runpy, sys
sys.argv = [sys.argv[1]] + sys.argv[2:]
try:
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
except SystemExit as exit:
    code = exit.code
print("loaded:", ",".join(m for m in {heavy!r} if m in sys.modules), "code:", code, file=sys.stderr)
""".format(heavy=HEAVY)


def _environment(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **extra}


def _probe(module: str, *arguments: str, cwd: Path) -> tuple[list[str], int, str]:
    done = subprocess.run([sys.executable, "-c", PROBE, module, *arguments], cwd=cwd, env=_environment(),
                          capture_output=True, text=True, timeout=120)
    last = done.stderr.strip().splitlines()[-1]
    loaded, code = last.removeprefix("loaded: ").split(" code: ")
    return [m for m in loaded.split(",") if m], int(code), done.stderr


RUNNERS = ["runners.finetune", "runners.pretrain", "runners.efficiency", "runners.plot", "runners.plot_low_resource"]


@pytest.mark.parametrize("module", RUNNERS)
def test_help_imports_nothing_heavy(module, tmp_path):
    loaded, code, _ = _probe(module, "--help", cwd=tmp_path)
    assert (loaded, code) == ([], 0)


@pytest.mark.parametrize("module, arguments, message", [
    ("runners.finetune", ["--epochs", "0"], "--epochs 0"),
    ("runners.finetune", ["--task", "sst-3"], "unknown task 'sst-3' (did you mean 'sst2'?)"),
    ("runners.finetune", ["--seed", "1", "--seeds", "2", "3"], "give --seed or --seeds, not both"),
    ("runners.finetune", ["--no-such-option"], "unrecognized arguments: --no-such-option"),
    ("runners.pretrain", ["--steps", "0"], "--steps must be at least 1"),
    ("runners.efficiency", ["--batch-size", "0"], "--batch-size must be ≥ 1"),
    ("runners.efficiency", ["--dtype", "fp64"], "invalid choice: 'fp64'"),
])
def test_usage_errors_come_before_the_heavy_imports(module, arguments, message, tmp_path):
    loaded, code, stderr = _probe(module, *arguments, "--output-dir", str(tmp_path / "out"), cwd=tmp_path)
    assert (loaded, code) == ([], 2)
    assert message in stderr and "Traceback" not in stderr
    assert not (tmp_path / "out").exists()


def test_the_efficiency_dtype_choices_are_the_measured_dtypes():
    from runners.efficiency import cli, rows

    assert set(cli.DTYPE_NAMES) == set(rows.DTYPES)


def test_the_efficiency_package_still_exports_its_names_lazily():
    import runners.efficiency as efficiency
    from runners.efficiency import rows, timing

    assert efficiency.make_batch is rows.make_batch and efficiency.time_interleaved is timing.time_interleaved
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        efficiency.nonexistent  # noqa: B018


# --- Ctrl-C while the runner is still importing --------------------------------------------


def _interrupt_when_loaded(command: list[str], marker: str, cwd: Path) -> subprocess.CompletedProcess:
    """Start `command`, send SIGINT as soon as a shared library whose path holds `marker` is mapped
    into it (it is then in the middle of importing that package), and wait for it to end."""
    process = subprocess.Popen(command, cwd=cwd, env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    maps = Path(f"/proc/{process.pid}/maps")
    deadline = time.monotonic() + 120
    try:
        while marker not in maps.read_text(errors="replace"):
            assert process.poll() is None, f"ended before loading {marker}: {process.communicate()}"
            assert time.monotonic() < deadline, f"{marker} not loaded within 120 s"
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _low_resource_run(root: Path) -> Path:
    from runners.finetune.results import RunResult

    folder = root / "low" / "a" / "compacter++" / "seed-1"
    folder.mkdir(parents=True)
    RunResult("a", "compacter++", 1, {"accuracy": 60.0}, train_examples=100, output_dir=str(folder)).save(folder)
    return root / "low"


def _commands(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    python = [sys.executable, "-m"]
    efficiency = _write(tmp_path / "efficiency.csv", "recipe,trainable_percent,peak_memory_mib,error\n"
                                                     "compacter++,0.05,100,\n")
    scores = _write(tmp_path / "scores.csv", "recipe,score\ncompacter++,80\n")
    return {
        "finetune": (python + ["runners.finetune", "--output-dir", str(tmp_path / "out")], "libtorch_cpu"),
        "pretrain": (python + ["runners.pretrain", "--output-dir", str(tmp_path / "out")], "libtorch_cpu"),
        "efficiency": (python + ["runners.efficiency", "--output-dir", str(tmp_path / "out")], "libtorch_cpu"),
        "plot": (python + ["runners.plot", "--efficiency", str(efficiency), "--scores", str(scores),
                           "--output", str(tmp_path / "out" / "figure.png")], "matplotlib"),
        "plot_low_resource": (python + ["runners.plot_low_resource", str(_low_resource_run(tmp_path)),
                                        "--output", str(tmp_path / "out" / "figure.png")], "matplotlib"),
    }


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux's /proc/PID/maps")
@pytest.mark.parametrize("runner", ["finetune", "pretrain", "efficiency", "plot", "plot_low_resource"])
def test_ctrl_c_during_the_start_up_imports_exits_130_with_one_line(runner, tmp_path):
    command, marker = _commands(tmp_path)[runner]
    done = _interrupt_when_loaded(command, marker, cwd=tmp_path)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("interrupted"), done.stderr
    out = tmp_path / "out"
    assert not out.exists() or not [p for p in out.rglob("*") if p.is_file() and p.name != ".lock"], \
        "nothing is written before the work starts"


def test_ctrl_c_while_a_figure_is_written_leaves_it_whole(monkeypatch, tmp_path):
    from matplotlib.figure import Figure

    from runners import plot

    save = Figure.savefig

    def interrupted_while_saving(figure, *args, **kwargs):
        signal.raise_signal(signal.SIGINT)  # Ctrl-C as the file is being written
        save(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", interrupted_while_saving)
    efficiency = plot.load_efficiency_rows(_write(tmp_path / "efficiency.csv", "recipe,trainable_percent,"
                                                  "peak_memory_mib,error\ncompacter++,0.05,100,\n"))
    scores = plot.load_scores(_write(tmp_path / "scores.csv", "recipe,score\ncompacter++,80\n"), None)
    with pytest.raises(KeyboardInterrupt):
        plot.plot_tradeoff(efficiency, scores, tmp_path / "figure.png", "")
    png = (tmp_path / "figure.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[-8:] == b"IEND\xaeB`\x82"  # the PNG's first and last bytes


# An entry point whose Ctrl-C lands in a weakref callback (as it can in importlib's module locks while
# torch is imported): Python drops that KeyboardInterrupt, so without a redelivery the command would
# go on to write its output.
DROPPED_INTERRUPT = """
import sys, time, weakref
from pathlib import Path
from runners.command import run_command

class Lock: ...

def main():
    def callback(reference):
        raise KeyboardInterrupt  # as if the Ctrl-C arrived while the callback ran
    lock = Lock(); reference = weakref.ref(lock, callback)
    del lock
    for _ in range(200):  # two seconds of work, then the output
        time.sleep(0.01)
    Path(sys.argv[1]).write_text("written")

run_command(main)
"""


def test_a_ctrl_c_that_python_drops_still_ends_the_command_with_one_line(tmp_path):
    output = tmp_path / "output.txt"
    done = subprocess.run([sys.executable, "-c", DROPPED_INTERRUPT, str(output)], env=_environment(),
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr) == (130, "interrupted\n")
    assert not output.exists()


def test_a_dropped_ctrl_c_still_owed_when_the_block_ends_is_raised_there():
    import weakref

    from runners import command

    class Lock: ...

    def callback(reference):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        with command.dropped_interrupts_redelivered():
            lock = Lock()
            reference = weakref.ref(lock, callback)  # noqa: F841 (kept alive until the del)
            del lock  # dropped; the block ends before the redelivery's delay is over
    time.sleep(command.REDELIVERY_DELAY_S * 5)  # and the cancelled redelivery sends nothing afterwards


def test_other_unraisable_errors_still_reach_the_previous_hook(monkeypatch):
    import weakref

    from runners import command

    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: seen.append(type(unraisable.exc_value)))

    class Lock: ...

    def callback(reference):
        raise ValueError("an ordinary error in a callback")

    with command.dropped_interrupts_redelivered():
        lock = Lock()
        reference = weakref.ref(lock, callback)  # noqa: F841
        del lock
    assert seen == [ValueError]


WARNS = """
import warnings
from runners.command import run_command

def main():
    warnings.warn("the training set has 2 rows", UserWarning)
    print("done")

run_command(main)
"""


def test_a_warning_in_a_runner_is_one_line_without_the_source_line():
    done = subprocess.run([sys.executable, "-c", WARNS], env=_environment(), capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "done\n", "warning: the training set has 2 rows (UserWarning)\n")
