"""What verified checkpoints cost: save_adapter / load_adapter with and without their checks.

Run from the repository root::

    python benchmarks/bench_checkpoint.py                 # T5-small shapes (60.5M parameters), random init
    python benchmarks/bench_checkpoint.py --config t5-base --rounds 3

For two recipes — compacter++ (a 35k-number adapter: the common case) and full-finetune (the
"adapter" is the whole model: the worst case for a checksum) — it times, interleaved round by
round in one process, `save_adapter` and `load_adapter` as shipped ("verified") and with the
verification switched off ("bare": no base-weight sample, no SHA-256 manifest, no finiteness
check),
and prints the median times and the ratio verified ÷ bare. It also times the base-weights sample
alone (4 numbers per base tensor) against hashing every base weight, the alternative it replaces.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import surgery  # noqa: E402
from surgery.fingerprint import sampled_tensors, weights_fingerprint  # noqa: E402

checkpoint = importlib.import_module("surgery.checkpoint")
CONFIGS = {
    "t5-small": dict(vocab_size=32128, d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8),
    "t5-base": dict(vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12),
}


@contextmanager
def bare():
    """save/load without the verification: what the checkpoint did before it had any."""
    saved = {name: getattr(checkpoint, name) for name in ("weights_fingerprint", "tensor_manifest", "check_manifest",
                                                          "weight_differences", "non_finite")}
    checkpoint.weights_fingerprint = lambda model, trained=(): {}
    checkpoint.tensor_manifest = lambda tensors: {}
    checkpoint.non_finite = lambda tensors: []
    checkpoint.check_manifest = lambda tensors, manifest, where: None
    checkpoint.weight_differences = lambda saved, model, trained=(): None
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(checkpoint, name, value)


def full_hash(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for _, parameter in sampled_tensors(model.named_parameters()):
        digest.update(memoryview(parameter.detach().contiguous().view(-1).view(torch.uint8).numpy()))
    return digest.hexdigest()


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main() -> None:
    from transformers import T5Config, T5ForConditionalGeneration

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="t5-small")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = T5Config(**CONFIGS[args.config])
    torch.manual_seed(0)
    base = T5ForConditionalGeneration(config).eval()
    print(f"{args.config}: {sum(p.numel() for p in base.parameters()):,} parameters, torch {torch.__version__}, "
          f"one thread, {args.rounds} interleaved rounds (medians)\n")

    sample = [timed(lambda: weights_fingerprint(base)) for _ in range(args.rounds)]
    hashed = [timed(lambda: full_hash(base)) for _ in range(args.rounds)]
    print("| base fingerprint | seconds |\n| --- | --- |")
    print(f"| sample, 4 numbers per tensor (shipped) | {statistics.median(sample):.4f} |")
    print(f"| SHA-256 of every base weight | {statistics.median(hashed):.4f} |")
    print(f"| ratio sample ÷ full hash | {statistics.median(sample) / statistics.median(hashed):.4f} |\n")

    print("| recipe | adapter numbers | operation | verified s | bare s | verified ÷ bare |\n| --- | --- | --- | --- | --- | --- |")
    for recipe in ("compacter++", "full-finetune"):
        model = T5ForConditionalGeneration(config).eval()
        model.load_state_dict(base.state_dict())
        surgery.apply(model, recipe)
        numbers = sum(p.numel() for p in model.parameters() if p.requires_grad)
        times: dict[tuple[str, str], list[float]] = {}
        with tempfile.TemporaryDirectory() as folder:
            for _ in range(args.rounds):
                for variant in ("verified", "bare"):
                    target = Path(folder) / variant
                    fresh = T5ForConditionalGeneration(config).eval()
                    fresh.load_state_dict(base.state_dict())
                    if variant == "bare":
                        with bare():
                            save = timed(lambda: surgery.save_adapter(model, target))
                            load = timed(lambda: surgery.load_adapter(fresh, target))
                    else:
                        save = timed(lambda: surgery.save_adapter(model, target))
                        load = timed(lambda: surgery.load_adapter(fresh, target))
                    times.setdefault(("save", variant), []).append(save)
                    times.setdefault(("load", variant), []).append(load)
        for operation in ("save", "load"):
            verified = statistics.median(times[(operation, "verified")])
            plain = statistics.median(times[(operation, "bare")])
            print(f"| {recipe} | {numbers:,} | {operation} | {verified:.3f} | {plain:.3f} | {verified / plain:.2f} |")


if __name__ == "__main__":
    main()
