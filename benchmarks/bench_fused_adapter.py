"""The fused adapter Function against the same adapter as plain modules, side by side in one run.

Run from the repository root::

    python benchmarks/bench_fused_adapter.py

For each projection (dense nn.Linear, Compacter's LPHM with a shared rule) and each shape
(T5-small k=512 d=16, T5-base k=768 d=24) and token count, it times forward + backward of one
adapter call in CPU time with one thread, the two variants interleaved, and prints the median
ratio fused ÷ plain (below 1 = the fused Function is faster). Both variants use the same
activation kernel, so the ratio is the fusion alone. It also prints the largest relative
difference of the gradients, which must be at float rounding level.
``methods.adapter.FUSE_MIN_ELEMENTS`` is chosen from this table.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from methods.adapter import BottleneckAdapter  # noqa: E402
from methods.phm import LowRankPHMLinear, PHMRule  # noqa: E402

SHAPES = {"t5-small": (512, 16), "t5-base": (768, 24)}
TOKENS = (64, 256, 1024, 4096)


def make_pair(projection: str, k: int, d: int) -> tuple[BottleneckAdapter, BottleneckAdapter]:
    if projection == "dense":
        down, up = nn.Linear(k, d), nn.Linear(d, k)
    else:
        rule = PHMRule(4)
        down, up = LowRankPHMLinear(k, d, 4, rule=rule), LowRankPHMLinear(d, k, 4, rule=rule)
    # Same parameters, one forced fused (threshold ignored), one plain.
    fused = BottleneckAdapter(down, up, "gelu_new", fuse=True)
    fused._takes_fused_path = lambda hidden_states: True  # type: ignore[method-assign]
    return fused, BottleneckAdapter(down, up, "gelu_new", fuse=False)


def all_parameters(adapter: BottleneckAdapter) -> list[torch.Tensor]:
    """The adapter's parameters and, for LPHM, the shared rule it reads but does not own."""
    shared = getattr(adapter.down, "_shared_rule", None)
    return list(adapter.parameters()) + ([shared.weight] if shared is not None else [])


def grads_of(adapter: BottleneckAdapter, x: torch.Tensor, grad: torch.Tensor) -> list[torch.Tensor]:
    params = all_parameters(adapter)
    for p in params:
        p.grad = None
    x = x.detach().requires_grad_()
    adapter(x).backward(grad)
    return [x.grad.clone()] + [p.grad.clone() for p in params]


def fwd_bwd_ms(adapter: nn.Module, x: torch.Tensor, grad: torch.Tensor, calls: int) -> float:
    start = time.process_time()
    for _ in range(calls):
        adapter(x).backward(grad)
        x.grad = None
    return (time.process_time() - start) / calls * 1e3


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    print("| projection | shape | tokens | plain ms | fused ms | fused ÷ plain | max rel. grad diff |")
    print("|---|---|---|---|---|---|---|")
    for projection in ("dense", "lphm"):
        for shape, (k, d) in SHAPES.items():
            fused, plain = make_pair(projection, k, d)
            for tokens in TOKENS:
                x = torch.randn(tokens, k, requires_grad=True)
                grad = torch.randn(tokens, k)
                diff = max((a - b).abs().max().item() / (b.abs().max().item() + 1e-12)
                           for a, b in zip(grads_of(fused, x, grad), grads_of(plain, x, grad)))
                calls = max(1, 4096 // tokens)
                samples: dict[str, list[float]] = {"plain": [], "fused": []}
                ratios = []
                for _ in range(15):
                    p = fwd_bwd_ms(plain, x, grad, calls)
                    f = fwd_bwd_ms(fused, x, grad, calls)
                    samples["plain"].append(p)
                    samples["fused"].append(f)
                    ratios.append(f / p)
                print(f"| {projection} | {shape} k={k} d={d} | {tokens} | {statistics.median(samples['plain']):.3f} | "
                      f"{statistics.median(samples['fused']):.3f} | {statistics.median(ratios):.3f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
