"""Generation speed of Intrinsic-SAID and BitFit: unfolded, cached, folded, against the base model.

Run from the repository root::

    python benchmarks/bench_fold.py                  # T5-small shapes, d' = 20,000
    python benchmarks/bench_fold.py --rounds 5 --new-tokens 16

Every row is the same random-init model (T5-small shapes), timed side by side in one run
(rounds interleaved, CPU time of the process with one thread, medians of per-round ratios):

* **base** — the untouched model;
* **intrinsic-said, recomputed** — θ₀ + λ·P·z recomputed at every module call, as before the cache
  (the cache switched off in this script only);
* **intrinsic-said, cached** — eval mode without gradients: each θ computed once, then reused by
  every later call (and **cached, first call after z changed**: the cost of computing them once);
* **intrinsic-said, folded** — `surgery.fold`: θ written into the weights, nothing added;
* **bitfit** (hooks adding the biases) and **bitfit, folded** (native biases of the linear layers).

Each row's greedy tokens are checked against its unfolded twin's, so equal work is compared.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch
from transformers import T5Config, T5ForConditionalGeneration

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import surgery  # noqa: E402
from methods.intrinsic_said import SubstituteIntrinsicWeights  # noqa: E402

T5_SMALL = dict(d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8, vocab_size=32128,
                decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, dropout_rate=0.0)


class Recomputed(SubstituteIntrinsicWeights):
    """The hook as it was before the cache: θ computed at every call."""

    def cacheable(self) -> bool:
        return False


def models(dimension: int) -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    base = T5ForConditionalGeneration(T5Config(**T5_SMALL)).eval()
    said = copy.deepcopy(base)
    surgery.apply(said, {"method": "intrinsic_said", "options": {"dimension": dimension}})
    with torch.no_grad():
        said.surgery.adapters.default.intrinsic.z.normal_(std=0.1)
    recomputed = copy.deepcopy(said)
    for module in recomputed.modules():
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, SubstituteIntrinsicWeights):
                hook.__class__ = Recomputed
    folded_said = copy.deepcopy(said)
    surgery.fold(folded_said)
    bitfit = copy.deepcopy(base)
    surgery.apply(bitfit, "bitfit")
    with torch.no_grad():
        for parameter in bitfit.parameters():
            if parameter.requires_grad:
                parameter.normal_(std=0.05)
    folded_bitfit = copy.deepcopy(bitfit)
    surgery.fold(folded_bitfit)
    return {"base": base, "intrinsic-said, recomputed": recomputed, "intrinsic-said, cached": said,
            "intrinsic-said, cached, first call after z changed": said,
            "intrinsic-said, folded": folded_said, "bitfit": bitfit, "bitfit, folded": folded_bitfit}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dimension", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--source-length", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = models(args.dimension)
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(2, T5_SMALL["vocab_size"], (args.batch, args.source_length), generator=generator)
    seconds: dict[str, list[float]] = {name: [] for name in rows}
    ratios: dict[str, list[float]] = {name: [] for name in rows}
    tokens: dict[str, torch.Tensor] = {}
    for model in rows.values():  # warm-up: allocator, kernels, and the cache of the cached row
        with torch.no_grad():
            model.generate(input_ids=ids, max_new_tokens=2, do_sample=False)
    for _ in range(args.rounds):
        for name, model in rows.items():
            if name.endswith("first call after z changed"):
                with torch.no_grad():
                    model.surgery.adapters.default.intrinsic.z.add_(0.0)  # a new version of z: every θ is computed again
            start = time.process_time()
            with torch.no_grad():
                tokens[name] = model.generate(input_ids=ids, max_new_tokens=args.new_tokens,
                                               min_new_tokens=args.new_tokens, do_sample=False)
            seconds[name].append(time.process_time() - start)
        for name in rows:
            ratios[name].append(seconds[name][-1] / seconds["base"][-1])
    for a, b in (("intrinsic-said, recomputed", "intrinsic-said, cached"), ("intrinsic-said, cached", "intrinsic-said, folded"),
                 ("bitfit", "bitfit, folded")):
        assert torch.equal(tokens[a], tokens[b]), f"{a} and {b} generate different tokens"
    print(f"generate: T5-small shapes (random init), batch {args.batch}, source {args.source_length} tokens, "
          f"{args.new_tokens} new tokens, greedy; Intrinsic-SAID d' = {args.dimension:,}; CPU time, 1 thread, "
          f"medians of {args.rounds} interleaved rounds; torch {torch.__version__}")
    print()
    print("| row | generate s | ÷ base |")
    print("|---|---|---|")
    for name in rows:
        print(f"| {name} | {statistics.median(seconds[name]):.3f} | {statistics.median(ratios[name]):.2f} |")


if __name__ == "__main__":
    main()
