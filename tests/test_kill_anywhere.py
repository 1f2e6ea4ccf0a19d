"""Kill anywhere: SIGKILL a short run at chosen and at random points, `--resume` each time, and end
with exactly the uninterrupted run: the same adapter tensors, the same result, every step logged once.

The points include each window of a checkpoint write (inside the adapter's safetensors write,
between `last/` → `last.previous/` and `last.partial/` → `last/`, while `training_state.pt` is
written), the best adapter's swap, a log record, an optimizer step, and a random moment of the
process (start-up included). A process killed before it wrote `arguments.json` has nothing to
resume, so the original command is run again, as a user would.

The runs are real processes forked by one helper that imported torch once (tests/kill_helper.py
--serve), so a dozen interrupted runs take seconds, not a minute.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import write_rte
from runners.finetune.jsonl_log import read_jsonl
from runners.finetune.results import RunResult
from surgery.checkpoint import WEIGHTS_FILE

ROOT = Path(__file__).resolve().parents[1]
HELPER = Path(__file__).with_name("kill_helper.py")
TINY = ["d_model=32", "d_kv=8", "d_ff=64", "num_layers=1", "num_heads=4", "dropout_rate=0.1"]
RUN = Path("rte") / "adapter" / "seed-7"
# Chosen windows, in the order the chain meets them (counts are per process: each resume starts afresh).
CHOSEN = [
    "save_file:1",               # inside the first checkpoint write (the adapter of last.partial): nothing to resume
    "rename[best]:1:after",      # right after the first best adapter was swapped in, before the epoch's checkpoint
    "log:3",                     # a step logged after the last checkpoint: must not appear twice
    "rename[last]:2",            # between save_checkpoint's two renames: last/ is gone, both copies complete
    "torch.save:2:after",        # rng written, training_state.pt not yet
]


def arguments(data_dir: Path, out: Path) -> list[str]:
    # 24 examples, global batch 8: 3 steps per epoch, 3 epochs; a checkpoint every 2 steps and per epoch.
    return ["--task", "rte", "--data-dir", str(data_dir), "--init-config", *TINY, "--recipe", "adapter",
            "--epochs", "3", "--batch-size", "8", "--lr", "1e-2", "--warmup-steps", "2", "--seed", "7",
            "--log-every", "1", "--save-every-steps", "2", "--output-dir", str(out), "--no-progress"]


class Runs:
    """A kill_helper --serve process: it forks one real process per run (imports paid once)."""

    def __init__(self):
        environment = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        self.server = subprocess.Popen([sys.executable, str(HELPER), "--serve"], cwd=ROOT, env=environment,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def run(self, spec: str, argv: list[str], kill_after: float = 0.0) -> int:
        self.server.stdin.write(f"{spec} {kill_after} {json.dumps(argv)}\n")
        self.server.stdin.flush()
        answer = self.server.stdout.readline()
        assert answer, self.server.stderr.read()
        code = int(answer)
        assert code in (0, -signal.SIGKILL), (spec, code)
        return code

    def close(self) -> None:
        self.server.stdin.close()
        self.server.wait(timeout=60)


def next_command(data_dir: Path, out: Path) -> list[str]:
    if (out / "arguments.json").is_file():
        return ["--resume", str(out), "--no-progress"]
    return arguments(data_dir, out)  # killed before the invocation was recorded: start it again


def without_timings(path: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if "seconds" not in k} for r in read_jsonl(path)]


@pytest.fixture(scope="module")
def runs():
    # One helper for the module: it imports torch and the runner once (~6 s) and forks a fresh
    # process per run, so runs of different tests share nothing but those imports.
    server = Runs()
    yield server
    server.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the helper forks one process per run (POSIX)")
def test_sigkill_anywhere_then_resume_equals_an_uninterrupted_run(tmp_path, runs):
    data_dir = write_rte(tmp_path / "rte")
    reference = tmp_path / "reference"
    assert runs.run("none", arguments(data_dir, reference)) == 0

    rng = random.Random(2024)
    points = [(spec, 0.0) for spec in CHOSEN]
    points += [(f"{event}:{rng.randint(1, 4)}{rng.choice(['', ':after'])}", 0.0)
               for event in rng.sample(["rename", "torch.save", "log", "step", "rmtree", "save_file"], 6)]
    points += [("none", rng.uniform(0.05, 1.5)) for _ in range(5)]  # random moments: start-up, training, writes
    out = tmp_path / "out"
    killed = []
    for spec, delay in points:
        if runs.run(spec, next_command(data_dir, out), kill_after=delay) == -signal.SIGKILL:
            killed.append(spec if not delay else f"after {delay:.2f} s")
    assert len(killed) >= 10, killed  # the chain really was interrupted, many times
    while not (out / RUN / "result.json").is_file():
        assert runs.run("none", next_command(data_dir, out)) == 0

    expected, final = load_file(reference / RUN / "last" / WEIGHTS_FILE), \
        load_file(out / RUN / "last" / WEIGHTS_FILE)
    assert final.keys() == expected.keys() and all(torch.equal(final[n], expected[n]) for n in expected)
    best, expected_best = load_file(out / RUN / "best" / WEIGHTS_FILE), \
        load_file(reference / RUN / "best" / WEIGHTS_FILE)
    assert all(torch.equal(best[n], expected_best[n]) for n in expected_best)
    result, expected_result = RunResult.load(out / RUN / "result.json"), RunResult.load(reference / RUN / "result.json")
    assert (result.test, result.validation, result.best_epoch) == (expected_result.test, expected_result.validation,
                                                                   expected_result.best_epoch)
    log = without_timings(out / RUN / "log.jsonl")
    steps = [r["step"] for r in log if r["event"] == "train"]
    assert steps == sorted(set(steps)) == list(range(1, 10))  # every step once, in order
    assert log == without_timings(reference / RUN / "log.jsonl")
    leftovers = [p.name for p in (out / RUN).iterdir() if p.name not in
                 ("last", "best", "log.jsonl", "result.json", "run.json", "task.json", "test_predictions.jsonl")
                 and not p.name.startswith(".")]
    assert leftovers == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the helper forks one process per run (POSIX)")
@pytest.mark.parametrize("spec, recovered_from, step", [
    # the 2nd checkpoint (end of epoch 1, step 3): last/ (step 2) renamed away, the new copy complete → the newer wins
    ("rename[last]:2", "last.partial", 3),
    # the 2nd checkpoint's training_state.pt still under its temporary name → incomplete: last/ (step 2) stays
    ("torch.save:4:after", None, 2),
])
def test_a_kill_inside_a_checkpoint_write_resumes_from_the_last_complete_one_with_a_note(
        tmp_path, runs, capsys, spec, recovered_from, step):
    from runners import finetune

    data_dir = write_rte(tmp_path / "rte")
    out = tmp_path / "out"
    assert runs.run(spec, arguments(data_dir, out)) == -signal.SIGKILL
    run = out / RUN
    assert (run / "last.partial").exists()
    assert finetune.main(["--resume", str(out), "--no-progress", "--stop-after-steps", str(step + 1)]) == 0
    printed = capsys.readouterr().out
    if recovered_from:
        assert f"note: recovered {run / 'last'} from {recovered_from}" in printed
    else:
        assert "note: removed last.partial" in printed
    assert any(line.startswith(f"resumed from {run / 'last'} at epoch") and line.endswith(f", step {step}")
               for line in printed.splitlines()), printed
    assert not (run / "last.partial").exists() and not (run / "last.previous").exists()
    steps = [r["step"] for r in read_jsonl(run / "log.jsonl") if r["event"] == "train"]
    assert steps == list(range(1, step + 2))
