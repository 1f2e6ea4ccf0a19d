"""Where Intrinsic-SAID's training step spends its projection time (T5-small shapes, one thread, CPU time).

Run from the repository root (also from an older checkout, to compare; functions it lacks are skipped)::

    python benchmarks/bench_said_split.py             # 2 measured steps after 1 warm-up
    python benchmarks/bench_said_split.py --ab 3      # also: 3 interleaved rounds, SAID vs floor, step ratio

Process time spent inside θ's forward (`FastfoodUpdate.forward`, which the recompute also calls),
the recompute in the backward (`RecomputeInBackward.unpack`), the transpose (`FastfoodUpdate.backward`)
and the embedding lookups' `FastfoodRowsUpdate`, per step.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path.cwd()))

from runners import efficiency  # noqa: E402

SPENT: collections.Counter = collections.Counter()
TIMED = [("methods.fastfood", "FastfoodUpdate", "forward", "θ forward (incl. recompute)"),
         ("methods.fastfood", "FastfoodUpdate", "backward", "transpose"),
         ("methods.said_recompute", "RecomputeInBackward", "unpack", "recompute"),
         ("methods.fastfood_rows", "FastfoodRowsUpdate", "forward", "lookup rows forward"),
         ("methods.fastfood_rows", "FastfoodRowsUpdate", "backward", "lookup rows backward")]


def instrument() -> None:
    for module_name, class_name, method, label in TIMED:
        try:
            owner = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError):
            continue
        original = getattr(owner, method)

        def timed(*args, _original=original, _label=label, **kwargs):
            start = time.process_time()
            try:
                return _original(*args, **kwargs)
            finally:
                SPENT[_label] += time.process_time() - start

        setattr(owner, method, timed if method == "unpack" else staticmethod(timed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--ab", type=int, default=0, help="interleaved rounds of SAID vs floor (0: none)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    instrument()
    device = torch.device("cpu")
    base = efficiency.build_base_model("t5-small", device, torch.float32, seed=0)
    batch = efficiency.make_batch(base.config.vocab_size, 8, 128, 8, device, 1)
    said = efficiency.prepare_candidate("intrinsic-said", base, 3e-4)
    efficiency.training_step(said, batch)
    SPENT.clear()
    start = time.process_time()
    for _ in range(args.steps):
        efficiency.training_step(said, batch)
    print(f"step {(time.process_time() - start) / args.steps:.2f} s;",
          ", ".join(f"{label} {seconds / args.steps:.3f} s" for label, seconds in SPENT.items()))
    if args.ab:
        floor = efficiency.prepare_candidate(efficiency.FLOOR, base, 3e-4)
        efficiency.training_step(floor, batch)
        ratios = []
        for _ in range(args.ab):
            seconds = []
            for candidate in (said, floor):
                begin = time.process_time()
                efficiency.training_step(candidate, batch)
                seconds.append(time.process_time() - begin)
            ratios.append(seconds[0] / seconds[1])
        print(f"SAID ÷ floor, median of {args.ab} rounds: {statistics.median(ratios):.3f} ({', '.join(f'{r:.3f}' for r in ratios)})")


if __name__ == "__main__":
    main()
