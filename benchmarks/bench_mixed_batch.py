"""A mixed batch (every example its own adapter) against running the adapters' groups one after another.

Run from the repository root::

    python benchmarks/bench_mixed_batch.py                 # T5-small shapes, 4 Compacter++ adapters
    python benchmarks/bench_mixed_batch.py --rounds 3 --new-tokens 8

One random-init model (T5-small shapes) holds ``--adapters`` Compacter++ adapters; a batch of
``--batch`` examples names them in turn. Each round times, interleaved, in CPU time of the
process with one thread:

* **mixed** — one ``generate`` (and one forward) with ``adapter_names=`` (`surgery.mixed_batch`);
* **groups one after another** — for each adapter, ``set_active`` and the same call on its examples;
* **one adapter** — the whole batch with a single adapter: what batching costs without any routing.

It prints the medians of the per-round ratios mixed ÷ groups and mixed ÷ one adapter, for greedy
and beam-search generation and for a forward pass, and checks that the mixed batch's tokens equal
the groups' (so the timing compares equal work).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from transformers import T5Config, T5ForConditionalGeneration

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import surgery  # noqa: E402

T5_SMALL = dict(d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8, vocab_size=32128,
                decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, dropout_rate=0.0)


def build(adapters: int) -> tuple[T5ForConditionalGeneration, list[str]]:
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(T5Config(**T5_SMALL)).eval()
    names = ["default"] + [f"task{i}" for i in range(1, adapters)]
    for name in names:
        surgery.apply(model, "compacter++", name=None if name == "default" else name)
        with torch.no_grad():  # trained-looking adapters, so each one's examples decode differently
            for parameter in model.parameters():
                if parameter.requires_grad:
                    parameter.add_(torch.randn_like(parameter) * 0.05)
    return model, names


def cpu_seconds(call) -> tuple[float, object]:
    start = time.process_time()
    result = call()
    return time.process_time() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapters", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--source-length", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, names = build(args.adapters)
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(2, T5_SMALL["vocab_size"], (args.batch, args.source_length), generator=generator)
    mask = torch.ones_like(ids)
    per_example = [names[i % len(names)] for i in range(args.batch)]
    groups = {name: [i for i, n in enumerate(per_example) if n == name] for name in names}
    # min_new_tokens: every call generates exactly as many tokens (no early end), so the work is equal
    cases = {"generate, greedy": dict(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, do_sample=False),
             "generate, 4 beams": dict(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, num_beams=4),
             "forward (scoring)": None}
    ratios: dict[str, dict[str, list[float]]] = {case: {"groups": [], "one": []} for case in cases}
    seconds: dict[str, dict[str, list[float]]] = {case: {"mixed": [], "groups": [], "one": []} for case in cases}

    def run(case: str, rows: list[int], adapter_names=None):
        options = cases[case]
        with torch.no_grad():
            if options is None:
                return model(input_ids=ids[rows], attention_mask=mask[rows], decoder_input_ids=ids[rows, :8],
                             adapter_names=adapter_names).logits
            return model.generate(input_ids=ids[rows], attention_mask=mask[rows], adapter_names=adapter_names, **options)

    everything = list(range(args.batch))
    for round_number in range(args.rounds):
        for case in cases:
            mixed_time, mixed = cpu_seconds(lambda: run(case, everything, per_example))
            grouped_time, grouped = 0.0, {}
            for name, rows in groups.items():
                surgery.set_active(model, name)
                spent, grouped[name] = cpu_seconds(lambda: run(case, rows))
                grouped_time += spent
            surgery.set_active(model, names[0])
            one_time, _ = cpu_seconds(lambda: run(case, everything))
            if round_number == 0 and cases[case] is not None:
                beams = cases[case].get("num_beams", 1)
                for name, rows in groups.items():  # same tokens: the work compared is the same
                    got, want = mixed[rows], grouped[name]
                    assert beams > 1 or torch.equal(got[:, : want.shape[1]], want), f"{case}: {name} differs"
            ratios[case]["groups"].append(mixed_time / grouped_time)
            ratios[case]["one"].append(mixed_time / one_time)
            for key, value in (("mixed", mixed_time), ("groups", grouped_time), ("one", one_time)):
                seconds[case][key].append(value)

    print(f"T5-small shapes (random init), {args.adapters} Compacter++ adapters, batch {args.batch} "
          f"({args.batch // args.adapters} examples each), source {args.source_length} tokens, "
          f"{args.new_tokens} new tokens; CPU time, 1 thread, medians of {args.rounds} interleaved rounds; "
          f"torch {torch.__version__}")
    print()
    print("| call | mixed s | groups one after another s | one adapter s | mixed ÷ groups | mixed ÷ one adapter |")
    print("|---|---|---|---|---|---|")
    for case in cases:
        s, r = seconds[case], ratios[case]
        print(f"| {case} | {statistics.median(s['mixed']):.3f} | {statistics.median(s['groups']):.3f} | "
              f"{statistics.median(s['one']):.3f} | {statistics.median(r['groups']):.3f} | {statistics.median(r['one']):.3f} |")


if __name__ == "__main__":
    main()
