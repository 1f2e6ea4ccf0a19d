"""Operators one training step of each efficiency row dispatches, counted on the CPU.

On a GPU whose steps are bound by launching work rather than by arithmetic (T5-base at batch
32 × 128 on an H200: the full fine-tuning step took 141 ms for about 7 ms of matrix products, see
benchmarks/results/gpu-2026-12-04), a row's step time follows how many operators it runs, and
those can be counted here without a GPU. The counts are torch profiler events named ``aten::*``
(views and other cheap ops included, so they are an upper bound on kernels), for one training
step after two warm-up steps, of the rows `runners.efficiency` builds::

    python benchmarks/count_ops.py                                  # floor, compacter++, compacter, adapter
    python benchmarks/count_ops.py --rows floor compacter++ --config t5-small

Prints a markdown table: events per step, and the ratio to the floor's (if the floor is a row).
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from runners.efficiency.rows import build_base_model, make_batch, prepare_candidate, training_step


def aten_events_per_step(candidate, batch) -> int:
    for _ in range(2):  # AdamW's state and the engine's caches exist before counting
        training_step(candidate, batch)
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        training_step(candidate, batch)
    return sum(event.name.startswith("aten::") for event in profiler.events())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="t5-base", help="a runners.efficiency --config (default t5-base)")
    parser.add_argument("--rows", nargs="+", default=["floor", "compacter++", "compacter", "adapter"],
                        help="efficiency rows: recipe names, floor, traced-identity")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--source-length", type=int, default=16)
    args = parser.parse_args(argv)
    base = build_base_model(args.config, torch.device("cpu"), torch.float32, 0)
    batch = make_batch(base.config.vocab_size, args.batch_size, args.source_length, 4, torch.device("cpu"), 0)
    counts = {}
    for name in args.rows:
        counts[name] = aten_events_per_step(prepare_candidate(name, base, 3e-4), batch)
    floor = counts.get("floor")
    print(f"| row ({args.config}) | aten events per training step | ÷ floor |\n|---|---|---|")
    for name, count in counts.items():
        print(f"| {name} | {count:,} | {count / floor:.2f} |" if floor else f"| {name} | {count:,} | — |")


if __name__ == "__main__":
    main()
