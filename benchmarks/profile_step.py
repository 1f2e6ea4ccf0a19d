"""Where the time and memory of one training step go: a recipe against the floor (or any two rows).

Run from the repository root::

    python benchmarks/profile_step.py                                   # compacter++ vs floor, T5-small
    python benchmarks/profile_step.py --rows compacter floor --steps 3

It builds the rows exactly as ``python -m runners.efficiency`` does (same model, batch, optimizer)
and prints, per row:

* time: ``torch.profiler`` self-CPU time per operator summed over ``--steps`` profiled steps, then
  the operators whose time differs most between the rows (what the extra time is spent on);
* memory: bytes of the tensors autograd saves for backward (``saved_tensors_hooks``, distinct
  storages), grouped by the innermost module running when they were saved. Saved activations are
  what a parameter-efficient method can add on top of the floor's peak; the difference between
  the rows, by module, says which inserted module keeps what alive.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
from pathlib import Path

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runners import efficiency  # noqa: E402


def operator_self_times_ms(candidate: efficiency.Candidate, batch: dict, steps: int) -> dict[str, float]:
    """Self CPU milliseconds per operator, per step (mean over `steps` profiled steps)."""
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            efficiency.training_step(candidate, batch)
    return {event.key: event.self_cpu_time_total / 1e3 / steps for event in profiler.key_averages()}


def saved_bytes_by_module(candidate: efficiency.Candidate, batch: dict) -> dict[str, int]:
    """Bytes autograd saves for backward in one forward, by the innermost module class saving them."""
    assert candidate.model is not None
    parameter_storages = {p.untyped_storage().data_ptr() for p in candidate.model.parameters()}
    running: list[nn.Module] = []
    seen: dict[int, tuple[str, int]] = {}

    def enter(module: nn.Module, _args) -> None:
        running.append(module)

    def leave(module: nn.Module, _args, _output) -> None:
        if running and running[-1] is module:
            running.pop()

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        owner = type(running[-1]).__name__ if running else "(outside modules)"
        kind = "parameters (static)" if storage.data_ptr() in parameter_storages else owner
        seen.setdefault(storage.data_ptr(), (kind, storage.nbytes()))
        return tensor

    handles = [module.register_forward_pre_hook(enter) for module in candidate.model.modules()]
    handles += [module.register_forward_hook(leave) for module in candidate.model.modules()]
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            loss = candidate.model(**batch).loss
        loss.backward()
        candidate.optimizer.zero_grad(set_to_none=True)
    finally:
        for handle in handles:
            handle.remove()
    totals: dict[str, int] = collections.Counter()
    for kind, nbytes in seen.values():
        totals[kind] += nbytes
    return dict(totals)


def print_time_comparison(names: list[str], times: list[dict[str, float]], top: int) -> None:
    a, b = times
    print(f"\n## Self CPU time per step (ms), {names[0]} vs {names[1]}\n")
    print(f"total: {sum(a.values()):.0f} vs {sum(b.values()):.0f}\n")
    keys = sorted(set(a) | set(b), key=lambda key: -abs(a.get(key, 0.0) - b.get(key, 0.0)))
    print(f"| operator | {names[0]} | {names[1]} | difference |\n|---|---|---|---|")
    for key in keys[:top]:
        print(f"| {key} | {a.get(key, 0.0):.1f} | {b.get(key, 0.0):.1f} | {a.get(key, 0.0) - b.get(key, 0.0):+.1f} |")


def print_memory_comparison(names: list[str], saved: list[dict[str, int]], memory: list[efficiency.MemoryMeasurement]) -> None:
    mib = efficiency.MIB
    print(f"\n## Memory (MiB), {names[0]} vs {names[1]}\n")
    print(f"| measure | {names[0]} | {names[1]} | difference |\n|---|---|---|---|")
    for label, values in (("static (params, buffers, AdamW)", [m.static_bytes for m in memory]),
                          ("transient peak of a step", [m.transient_bytes for m in memory]),
                          ("peak", [m.peak_bytes for m in memory]),
                          ("saved for backward, activations", [sum(v for k, v in s.items() if k != "parameters (static)")
                                                               for s in saved])):
        print(f"| {label} | {values[0] / mib:.2f} | {values[1] / mib:.2f} | {(values[0] - values[1]) / mib:+.2f} |")
    keys = sorted(set(saved[0]) | set(saved[1]), key=lambda key: -abs(saved[0].get(key, 0) - saved[1].get(key, 0)))
    for key in keys:
        x, y = saved[0].get(key, 0), saved[1].get(key, 0)
        print(f"| saved by {key} | {x / mib:.2f} | {y / mib:.2f} | {(x - y) / mib:+.2f} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", nargs=2, default=["compacter++", efficiency.FLOOR])
    parser.add_argument("--config", default="t5-small", choices=("tiny", "t5-small", "t5-base"))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--source-length", type=int, default=128)
    parser.add_argument("--target-length", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="profiled steps per row (interleaved timing: 2 rounds)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    base = efficiency.build_base_model(args.config, device, torch.float32, seed=0)
    batch = efficiency.make_batch(base.config.vocab_size, args.batch_size, args.source_length, args.target_length, device, 1)
    candidates = [efficiency.prepare_candidate(name, base, 3e-4) for name in args.rows]
    for candidate in candidates:
        if not candidate.ok:
            raise SystemExit(f"{candidate.name}: {candidate.error}")
        efficiency.training_step(candidate, batch)  # AdamW state exists from here on
    memory = [efficiency.measure_peak_memory(c, batch, device) for c in candidates]
    saved = [saved_bytes_by_module(c, batch) for c in candidates]
    # Two interleaved profiling rounds; per operator the smaller of the two (least disturbed) is kept.
    rounds = [[operator_self_times_ms(c, batch, args.steps) for c in candidates] for _ in range(2)]
    times = [{key: min(r[i].get(key, 0.0) for r in rounds) for key in set().union(*(r[i] for r in rounds))}
             for i in range(len(candidates))]
    cpu = [statistics.median(efficiency.time_once(lambda c=c: efficiency.training_step(c, batch), device)["cpu"]
                             for _ in range(args.steps)) for c in candidates]
    print(f"step CPU time (median of {args.steps}, not profiled): "
          + ", ".join(f"{c.name} {t * 1e3:.0f} ms" for c, t in zip(candidates, cpu)))
    print_time_comparison(args.rows, times, args.top)
    print_memory_comparison(args.rows, saved, memory)


if __name__ == "__main__":
    main()
