"""How long a runner takes to answer: --help, a usage error, and a Hub that cannot be reached.

Run from the repository root::

    python benchmarks/bench_startup.py                          # this checkout
    python benchmarks/bench_startup.py --compare /work/main     # and another checkout, side by side
    python benchmarks/bench_startup.py --repeats 5 --no-hub

Each command is a fresh ``python -m ...`` process (wall clock, median of ``--repeats``), run
round-robin with the floor ``python -c pass`` so that load from other processes hits them alike.
The Hub rows run ``--task sst-2`` (no local data) with ``HF_ENDPOINT`` on a closed local port,
next to their own floor, the import of torch + transformers + datasets: what is left over that is
the time spent on the Hub. Ratios are to the floor of the same round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = [sys.executable]

FLOOR = ("python -c pass", PY + ["-c", "pass"])
HELP = [(f"{module} --help", PY + ["-m", module, "--help"]) for module in
        ("runners.finetune", "runners.pretrain", "runners.efficiency", "runners.plot", "runners.plot_low_resource")]
USAGE = [("runners.finetune --epochs 0", PY + ["-m", "runners.finetune", "--epochs", "0"]),
         ("runners.finetune --task sst-3", PY + ["-m", "runners.finetune", "--task", "sst-3"])]
IMPORT_FLOOR = ("import torch, transformers, datasets", PY + ["-c", "import torch, transformers, datasets"])
HUB = [("runners.finetune --task sst-2 (Hub unreachable)", PY + ["-m", "runners.finetune", "--task", "sst-2"])]


def time_command(command: list[str], root: Path, scratch: Path) -> tuple[float, int]:
    """Wall seconds and exit code of `command` run with `root` first on the import path."""
    environment = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1",
                   "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(scratch / "hf-home")}
    for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        environment.pop(variable, None)
    output = scratch / f"out-{time.monotonic_ns()}"
    extra = ["--output-dir", str(output)] if "runners.finetune" in command and "--help" not in command else []
    started = time.perf_counter()
    done = subprocess.run(command + extra, cwd=scratch, env=environment, capture_output=True, timeout=900)
    return time.perf_counter() - started, done.returncode


def measure(rows: list[tuple[str, list[str]]], floor: tuple[str, list[str]], roots: list[Path], repeats: int,
            scratch: Path) -> dict[tuple[str, Path], list[tuple[float, float]]]:
    """(seconds, seconds ÷ the floor of its round) per (row, root), rounds interleaved."""
    samples: dict[tuple[str, Path], list[tuple[float, float]]] = {}
    for _ in range(repeats):
        floor_seconds, _ = time_command(floor[1], roots[0], scratch)
        samples.setdefault((floor[0], roots[0]), []).append((floor_seconds, 1.0))
        for name, command in rows:
            for root in roots:
                seconds, code = time_command(command, root, scratch)
                samples.setdefault((name, root), []).append((seconds, seconds / floor_seconds))
                print(f"  {name} [{root}]: {seconds:.2f} s (exit {code})", file=sys.stderr, flush=True)
    return samples


def table(samples: dict[tuple[str, Path], list[tuple[float, float]]], roots: list[Path]) -> str:
    header = "| command | " + " | ".join(f"{root} s | ÷ floor" for root in roots) + " |"
    lines = [header, "|" + " --- |" * (1 + 2 * len(roots))]
    for name in dict.fromkeys(name for name, _ in samples):
        cells = []
        for root in roots:
            values = samples.get((name, root))
            if values is None:
                cells += ["", ""]
                continue
            cells += [f"{statistics.median(s for s, _ in values):.2f}", f"{statistics.median(r for _, r in values):.1f}×"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compare", type=Path, nargs="*", default=[], help="other checkouts, measured side by side")
    parser.add_argument("--no-hub", action="store_true", help="skip the (slow: heavy imports) Hub rows")
    args = parser.parse_args()
    roots = [ROOT, *[path.resolve() for path in args.compare]]
    load = f"; load average (1 min) {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""
    print(f"{os.cpu_count()} CPU cores{load}; median wall seconds of {args.repeats} fresh processes each")
    with tempfile.TemporaryDirectory() as scratch:
        print(table(measure(HELP + USAGE, FLOOR, roots, args.repeats, Path(scratch)), roots))
        if not args.no_hub:
            print()
            print(table(measure(HUB, IMPORT_FLOOR, roots, max(1, args.repeats // 3), Path(scratch)), roots))
    if hasattr(os, "getloadavg"):
        print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
