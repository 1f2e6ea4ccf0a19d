"""The main finetune job on a busy machine: the old fixed 2 threads against threads for the free cores.

Run from the repository root::

    python benchmarks/bench_busy_machine.py                 # 2 epochs of the main job, 1 round
    python benchmarks/bench_busy_machine.py --epochs 10 --rounds 2 --busy-processes 1

The main job is ``python -m runners.finetune`` (compacter++ on the embedded T5, embedded-sst2),
shortened to ``--epochs`` (the full job is 10). It runs four ways, interleaved round by round:

* ``old``: ``--threads 2``, the fixed choice before (2 threads for the embedded model);
* ``new``: the default, one thread per core free at the start (`runners.threads`);

each on the machine as it is ("quiet") and next to ``--busy-processes`` CPU-burning processes
("busy") that start 2 s before the run and stop by themselves after ``--busy-limit`` seconds (or
when the run ends). Times: the wall clock of the whole process, and the training time the run
records (``seconds`` in result.json). Ratios are taken within a round. The machine this was written
on is shared, so "quiet" means "without our extra load", not idle: read the figures as noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POLICIES = {"old (--threads 2)": ["--threads", "2"], "new (free cores)": []}
BURN = "import time\nend = time.monotonic() + {limit}\nwhile time.monotonic() < end:\n    pass\n"


def start_busy(count: int, limit: float) -> list[subprocess.Popen]:
    """`count` processes that each keep one core busy for `limit` seconds, then end by themselves."""
    return [subprocess.Popen([sys.executable, "-c", BURN.format(limit=limit)]) for _ in range(count)]


def run_job(extra: list[str], epochs: int, scratch: Path) -> tuple[float, float]:
    """(wall seconds of the process, training seconds from result.json) of one shortened main job."""
    output = scratch / f"run-{time.monotonic_ns()}"
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    environment.pop("OMP_NUM_THREADS", None)  # the runner's own choice is what is measured
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "runners.finetune", "--epochs", str(epochs), "--no-progress",
                    "--output-dir", str(output), *extra], cwd=scratch, env=environment, check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    result = next(output.rglob("result.json"))
    return wall, float(json.loads(result.read_text())["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--busy-processes", type=int, default=1)
    parser.add_argument("--busy-limit", type=float, default=600.0, help="seconds after which a busy process stops")
    args = parser.parse_args()
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    load = f", load average (1 min) {os.getloadavg()[0]:.2f} at the start" if hasattr(os, "getloadavg") else ""
    print(f"{os.cpu_count()} CPU cores{load}; main job shortened to {args.epochs} epoch(s); {args.rounds} round(s)")
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(args.rounds):
            for condition in ("quiet", "busy"):
                for policy, extra in POLICIES.items():
                    busy = start_busy(args.busy_processes, args.busy_limit) if condition == "busy" else []
                    time.sleep(2.0 if busy else 0.0)
                    try:
                        wall, train = run_job(extra, args.epochs, Path(scratch))
                    finally:
                        for process in busy:
                            process.kill()
                            process.wait()
                    samples.setdefault((policy, condition), []).append((wall, train))
                    print(f"  {policy}, {condition}: wall {wall:.1f} s, training {train:.1f} s", file=sys.stderr,
                          flush=True)

    def median(policy: str, condition: str, which: int) -> float:
        return statistics.median(sample[which] for sample in samples[(policy, condition)])

    print("| threads | quiet: wall s | quiet: training s | busy: wall s | busy: training s | busy ÷ quiet (training) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for policy in POLICIES:
        quiet, busy = median(policy, "quiet", 1), median(policy, "busy", 1)
        print(f"| {policy} | {median(policy, 'quiet', 0):.1f} | {quiet:.1f} | {median(policy, 'busy', 0):.1f} | "
              f"{busy:.1f} | {busy / quiet:.2f}× |")
    old, new = POLICIES
    for condition in ("quiet", "busy"):
        ratio = median(new, condition, 1) / median(old, condition, 1)
        print(f"training time new ÷ old, {condition}: {ratio:.2f}×")
    if hasattr(os, "getloadavg"):
        print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
