"""Cost of Intrinsic-SAID's projections per `fastfood_version`: θ = θ₀ + λ·P·z, forward and backward.

Run from the repository root::

    python benchmarks/bench_fastfood.py                 # T5-small shapes, d' = 20,000
    python benchmarks/bench_fastfood.py --rounds 5

For T5-small's tensors (d_model 512, d_ff 2048, vocab 32128; the 131 tensors Intrinsic-SAID
reparametrises) it prints, per version:

* **held MiB** — what the projections keep between steps (version 1: B, Π, G of every block;
  version 2: nothing; version 3: one round's G, Π, B per tensor), counted on the meta device;
* **forward / forward+backward ns per entry** — `methods.fastfood.update` on one 2048 × 512 tensor
  (an FFN matrix), CPU time of the process with one thread, median over interleaved rounds, and the
  ratio to version 3 within each round (median).

The model's own step is not in these numbers: `python -m runners.efficiency` measures that.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from methods.fastfood import Fastfood, update  # noqa: E402

T5_SMALL_TENSORS = ([32128 * 512] + [512 * 512] * (6 * 4 + 6 * 8) + [512 * 2048] * (12 * 2) + [512] * (6 * 2 + 6 * 3 + 2)
                    + [32 * 8] * 2)  # embedding; q,k,v,o (encoder 1, decoder 2 attentions); wi, wo; layer norms; rel. bias


def held_mib(version: int, z_size: int) -> float:
    total = 0
    for numel in T5_SMALL_TENSORS:
        projection = Fastfood(z_size, numel, seed=0, device="meta", version=version)
        total += sum(b.numel() * b.element_size() for b in projection.buffers())
    return total / 2**20


def timed(function, repeats: int = 3) -> float:
    function()
    start = time.process_time()
    for _ in range(repeats):
        function()
    return (time.process_time() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dimension", type=int, default=20000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    z_size = args.dimension - len(T5_SMALL_TENSORS)
    base = torch.randn(2048, 512)
    z = torch.randn(z_size, requires_grad=True)
    scale = torch.tensor(1.0, requires_grad=True)
    projections = {v: Fastfood(z_size, base.numel(), seed=1, norm_preserving=True, version=v) for v in (1, 2, 3)}
    forward: dict[int, list[float]] = {v: [] for v in projections}
    both: dict[int, list[float]] = {v: [] for v in projections}
    for round_index in range(args.rounds):
        order = list(projections)[round_index % 3:] + list(projections)[: round_index % 3]
        for version in order:
            projection = projections[version]
            forward[version].append(timed(lambda: update(z.detach(), scale.detach(), base, projection)) / base.numel())
            both[version].append(timed(lambda: update(z, scale, base, projection).sum().backward()) / base.numel())
    print(f"T5-small shapes, {len(T5_SMALL_TENSORS)} tensors, d' = {args.dimension:,}, L = {projections[3].padded_size}; "
          f"one torch thread, CPU time, {args.rounds} interleaved rounds; per entry of a 2048 × 512 tensor")
    print("| fastfood_version | held MiB (T5-small) | forward ns/entry | ÷ v3 | forward+backward ns/entry | ÷ v3 |")
    print("|---|---|---|---|---|---|")
    for version in projections:
        ratio = statistics.median(a / b for a, b in zip(forward[version], forward[3]))
        ratio_both = statistics.median(a / b for a, b in zip(both[version], both[3]))
        print(f"| {version} | {held_mib(version, z_size):.1f} | {statistics.median(forward[version]) * 1e9:.1f} | {ratio:.2f} "
              f"| {statistics.median(both[version]) * 1e9:.1f} | {ratio_both:.2f} |")


if __name__ == "__main__":
    main()
