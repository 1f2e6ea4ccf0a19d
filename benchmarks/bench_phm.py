"""Speed of the PHM / LPHM compute paths, as ratios to the dense build-every-forward layer.

Run from the repository root::

    python benchmarks/bench_phm.py [--device cpu|cuda] [--repeats N] [--sample-ms 2] [--batch 8] [--seq 128]

What it measures. For the T5-small (k=512, d=16) and T5-base (k=768, d=24) adapter shapes, for
the down (k→d) and up (d→k) projection, for n ∈ {4, 8, 12} where n divides both sizes, and for
``PHMLinear`` and ``LowRankPHMLinear`` (rank 1), it builds three layers with identical
parameters: ``compute="dense"`` (rebuild W = Σ A_i ⊗ B_i on every forward, then x @ W + b:
what other libraries do), ``compute="factored"`` and ``compute="auto"``. On a token batch
``(batch, seq, in)`` (8×128 by default) it times

* ``fwd``: a training-mode forward with autograd recording,
* ``fwd+bwd``: the same forward plus ``backward`` into the input and every parameter,
* ``eval``: the ``"auto"`` layer in eval mode under ``torch.no_grad`` (cached W, one matmul),
  against the dense layer under ``no_grad`` in training mode (which rebuilds W every call).

One sample averages enough back-to-back calls to last about ``--sample-ms``; the variants are
sampled in turn, repeat after repeat (so drift in clock speed or load hits them alike), and
the table reports the median sample of each.

How to read the table. ``dense ms`` columns are absolute medians of the reference; every other
number is ``time(variant) / time(dense)`` measured side by side in this run: below 1.00 is
faster than dense, above is slower. ``auto→`` is the path ``"auto"`` takes while training
(its ``fwd``/``fwd+bwd`` ratios should match the faster of dense (1.00) and factored, up to
noise). The last line, the noise gauge, gives the spread of the ``auto`` ratios on rows where
``auto`` runs exactly the reference's code: differences smaller than that spread are noise.
Run it on an otherwise idle machine; it warns when the load average says otherwise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from methods.phm import LowRankPHMLinear, PHMLinear  # noqa: E402

MODEL_SHAPES: dict[str, tuple[int, int]] = {"t5-small": (512, 16), "t5-base": (768, 24)}
N_VALUES: tuple[int, ...] = (4, 8, 12)
LAYER_KINDS: tuple[str, ...] = ("PHM", "LPHM")


@dataclass(frozen=True)
class Case:
    model: str
    projection: str  # "down" (k→d) or "up" (d→k)
    layer: str  # "PHM" or "LPHM"
    n: int
    in_features: int
    out_features: int


def iter_cases() -> Iterator[Case]:
    for model, (k, d) in MODEL_SHAPES.items():
        for projection, (fan_in, fan_out) in (("down", (k, d)), ("up", (d, k))):
            for n in N_VALUES:
                if k % n or d % n:
                    continue  # n must divide both sizes
                for layer in LAYER_KINDS:
                    yield Case(model, projection, layer, n, fan_in, fan_out)


def make_layer(case: Case, compute: str, device: torch.device) -> nn.Module:
    if case.layer == "PHM":
        layer = PHMLinear(case.in_features, case.out_features, case.n, compute=compute)
    else:
        layer = LowRankPHMLinear(case.in_features, case.out_features, case.n, rank=1, compute=compute)
    return layer.to(device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_per_call(fn: Callable[[], None], device: torch.device, calls: int) -> float:
    """Seconds per call, averaged over ``calls`` back-to-back calls (one sample)."""
    synchronize(device)
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    synchronize(device)
    return (time.perf_counter() - start) / calls


def calls_per_sample(fn: Callable[[], None], device: torch.device, target_s: float) -> int:
    """How many calls make one sample last about ``target_s``: a single sub-millisecond call
    is at the mercy of timer resolution and scheduler jitter, a few milliseconds is not."""
    return max(1, round(target_s / max(time_per_call(fn, device, 3), 1e-7)))


def measure_case(
    case: Case, device: torch.device, batch: int, seq: int, repeats: int, warmup: int, sample_s: float
) -> dict:
    torch.manual_seed(0)
    dense = make_layer(case, "dense", device)
    factored = make_layer(case, "factored", device)
    auto = make_layer(case, "auto", device)
    factored.load_state_dict(dense.state_dict())
    auto.load_state_dict(dense.state_dict())
    auto_eval = make_layer(case, "auto", device).eval()
    auto_eval.load_state_dict(dense.state_dict())

    x = torch.randn(batch, seq, case.in_features, device=device, requires_grad=True)
    grad_out = torch.randn(batch, seq, case.out_features, device=device)

    def forward(layer: nn.Module) -> Callable[[], None]:
        return lambda: layer(x)

    def forward_backward(layer: nn.Module) -> Callable[[], None]:
        def run() -> None:
            layer(x).backward(grad_out)
            layer.zero_grad(set_to_none=True)
            x.grad = None

        return run

    def no_grad_forward(layer: nn.Module) -> Callable[[], None]:
        def run() -> None:
            with torch.no_grad():
                layer(x)

        return run

    variants: dict[str, Callable[[], None]] = {
        "fwd/dense": forward(dense),
        "fwd/factored": forward(factored),
        "fwd/auto": forward(auto),
        "fwdbwd/dense": forward_backward(dense),
        "fwdbwd/factored": forward_backward(factored),
        "fwdbwd/auto": forward_backward(auto),
        "eval/dense": no_grad_forward(dense),  # training mode: rebuilds W on every call
        "eval/cached": no_grad_forward(auto_eval),
    }
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    calls = {name: calls_per_sample(fn, device, sample_s) for name, fn in variants.items()}
    samples: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants)
    for _ in range(repeats):  # interleaved: each repeat takes one sample of every variant
        for name in order:
            samples[name].append(time_per_call(variants[name], device, calls[name]))
        order.reverse()  # so no variant always runs right after the same neighbour
    median = {name: statistics.median(times) for name, times in samples.items()}
    return {
        "auto_path": auto.resolved_compute_path(),
        "fwd_dense_ms": 1e3 * median["fwd/dense"],
        "fwd_factored": median["fwd/factored"] / median["fwd/dense"],
        "fwd_auto": median["fwd/auto"] / median["fwd/dense"],
        "fwdbwd_dense_ms": 1e3 * median["fwdbwd/dense"],
        "fwdbwd_factored": median["fwdbwd/factored"] / median["fwdbwd/dense"],
        "fwdbwd_auto": median["fwdbwd/auto"] / median["fwdbwd/dense"],
        "eval_dense_ms": 1e3 * median["eval/dense"],
        "eval_cached": median["eval/cached"] / median["eval/dense"],
    }


def format_row(case: Case, r: dict) -> str:
    shape = f"{case.in_features}→{case.out_features}"
    return (
        f"| {case.model} | {case.projection} {shape} | {case.layer} | {case.n} | {r['auto_path']} "
        f"| {r['fwd_dense_ms']:.3f} | {r['fwd_factored']:.2f} | {r['fwd_auto']:.2f} "
        f"| {r['fwdbwd_dense_ms']:.3f} | {r['fwdbwd_factored']:.2f} | {r['fwdbwd_auto']:.2f} "
        f"| {r['eval_dense_ms']:.3f} | {r['eval_cached']:.2f} |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--repeats", type=int, default=15, help="samples per variant (median)")
    parser.add_argument("--sample-ms", type=float, default=2.0, help="length of one sample")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda requested but torch.cuda.is_available() is False")
    device = torch.device(args.device)

    if device.type == "cpu" and hasattr(os, "getloadavg") and os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        print(f"warning: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; expect noisy ratios\n")
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(
        f"PHM/LPHM compute paths, torch {torch.__version__}, {where}, fp32, tokens "
        f"{args.batch}×{args.seq}, median of {args.repeats} interleaved "
        f"samples of ~{args.sample_ms:g} ms each.\n"
        "Ratios are time / time of the dense build-every-forward layer (< 1 = faster).\n"
    )
    print(
        "| model | projection | layer | n | auto→ | dense fwd ms | factored fwd | auto fwd "
        "| dense fwd+bwd ms | factored fwd+bwd | auto fwd+bwd | dense no-grad ms | eval cached |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    same_code_ratios: list[float] = []
    for case in iter_cases():
        result = measure_case(
            case, device, args.batch, args.seq, args.repeats, args.warmup, args.sample_ms / 1e3
        )
        print(format_row(case, result), flush=True)
        if result["auto_path"] == "dense":
            same_code_ratios += [result["fwd_auto"], result["fwdbwd_auto"]]
    skipped = [
        f"{model} n={n}" for model, (k, d) in MODEL_SHAPES.items() for n in N_VALUES if k % n or d % n
    ]
    if skipped:
        print(f"\nSkipped (n does not divide both sizes): {', '.join(skipped)}.")
    if same_code_ratios:
        # Where "auto" resolves to dense it runs the reference's own code, so its ratio is 1.00
        # up to measurement noise: the spread says how far to trust the other ratios.
        print(
            f"Noise gauge: auto ratios on rows where auto runs the dense code span "
            f"{min(same_code_ratios):.2f}-{max(same_code_ratios):.2f} (ideal 1.00)."
        )


if __name__ == "__main__":
    main()
