"""What any method that moves every weight must pay beyond the floor: the gradient of every weight tensor.

Run from the repository root::

    python benchmarks/bench_said_bound.py               # T5-small shapes, batch 8 × 128 / 8, 3 rounds
    python benchmarks/bench_said_bound.py --rounds 5

Intrinsic-SAID's z and λ get their gradients through every θⱼ: ∂L/∂z = Σⱼ λⱼ·Pⱼᵀ·vec(∂L/∂θⱼ), so the
backward computes ∂L/∂θⱼ for every tensor — for a linear layer one more GEMM per call, as in full
fine-tuning — before any projection work. The floor (`runners.efficiency`: only the layer norms
train) computes none of them. This prints, side by side in interleaved rounds (CPU time of the
process, one thread, median of the per-round ratios to the floor):

* **floor** — the efficiency runner's floor row: forward, backward, AdamW step;
* **every weight's gradient** — the same model with every parameter requiring a gradient, forward and
  backward only (no optimizer step: what SAID's backward must compute at the least, without its projections);
* **intrinsic-said** — the bundled recipe's training step, as `python -m runners.efficiency` runs it.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runners import efficiency  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--recipe", default="intrinsic-said")
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = torch.device("cpu")
    base = efficiency.build_base_model("t5-small", device, torch.float32, seed=0)
    batch = efficiency.make_batch(base.config.vocab_size, 8, 128, 8, device, 1)
    floor, said = (efficiency.prepare_candidate(name, base, 3e-4) for name in (efficiency.FLOOR, args.recipe))
    every = copy.deepcopy(base).train()
    for parameter in every.parameters():
        parameter.requires_grad_(True)

    def every_gradient() -> None:
        every(**batch).loss.backward()
        every.zero_grad(set_to_none=True)

    steps = {"floor": lambda: efficiency.training_step(floor, batch), "every weight's gradient": every_gradient,
             args.recipe: lambda: efficiency.training_step(said, batch)}
    for step in steps.values():
        step()  # warm-up (AdamW state, allocator)
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            start = time.process_time()
            step()
            seconds[name].append(time.process_time() - start)
    print(f"T5-small shapes, batch 8 × 128 / 8, one thread, CPU time, {args.rounds} interleaved rounds\n")
    print("| row | step ms (median) | ÷ floor (median of rounds) |\n|---|---|---|")
    for name, values in seconds.items():
        ratio = statistics.median(v / f for v, f in zip(values, seconds["floor"]))
        print(f"| {name} | {statistics.median(values) * 1e3:.0f} | {ratio:.3f} |")


if __name__ == "__main__":
    main()
