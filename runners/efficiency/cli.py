"""Efficiency of every recipe on one model, batch and data, measured side by side (paper Table 3).

The command line and the run (the protocol is in the `runners.efficiency` package docstring)::

    main(argv)
      ├─ parse_args
      ├─ claim_inputs       --scores read, --output-dir locked (one line and exit 2 if either is bad)
      ├─ measure(args)      rows built, warmed up, memory measured, timed round-robin,
      │                     surgery.apply timed on T5-large
      └─ report_markdown / write_outputs
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from runners.command import interrupts_deferred

from runners.errors import EXIT_USAGE, UsageError

from .inputs import claim_inputs

# torch, transformers and the engine are imported where the measuring starts, not here:
# --help and a usage error come back in well under a second.
if TYPE_CHECKING:
    import torch

    from .ratios import Row
    from .rows import Candidate
    from .timing import ApplyTimes

DTYPE_NAMES = ("fp32", "bf16")  # the keys of runners.efficiency.rows.DTYPES (a test keeps them equal)


def machine_description(device: torch.device) -> str:
    import torch

    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        where = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}"
    load = ", load average (1 min) {:.2f}".format(os.getloadavg()[0]) if hasattr(os, "getloadavg") else ""
    return f"{where}; torch {torch.__version__}; Python {platform.python_version()}{load}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m runners.efficiency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=("tiny", "t5-small", "t5-base", "embedded", "llama-tiny", "llama-small"),
                        default="t5-small",
                        help="random-init model shapes (default t5-small; embedded: the shipped embedded T5's; "
                             "llama-small: a decoder-only Llama of T5-small's size, d_model 512, 12 layers, "
                             "intermediate 1408; llama-tiny for smoke runs)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--source-length", type=int, default=128)
    parser.add_argument("--target-length", type=int, default=8,
                        help="label tokens (default 8: MNLI's labels are ≤ 4 tokens with EOS, padded to 8)")
    parser.add_argument("--recipes", nargs="+", default=None,
                        help="bundled recipe names or YAML paths (default: every bundled recipe); "
                             "full-finetune is always added as the reference")
    parser.add_argument("--steps", type=int, default=1, help="timed steps per row per round")
    parser.add_argument("--repeats", type=int, default=6, help="interleaved rounds (medians over repeats × steps)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per row before measuring")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--dtype", choices=DTYPE_NAMES, default="fp32")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1; 0 keeps torch's default). On a shared 2-core "
                             "machine a 2-thread pool stalls whenever another process holds a core: measured "
                             "steps then vary 10× run to run, single-threaded ones by a few percent")
    parser.add_argument("--clock", choices=("auto", "cpu", "wall", "cuda"), default="auto",
                        help="what the times are: cpu = CPU time of this process (time.process_time), wall = "
                             "wall clock, cuda = CUDA events around each step; auto (default) = cpu on --device "
                             "cpu, cuda on --device cuda. With one thread, "
                             "CPU time is the step's compute alone: other processes' load does not enter it")
    parser.add_argument("--compile", action="store_true",
                        help="run every row's model through torch.compile (the same for all rows; the warm-up steps "
                             "compile, so give --warmup 2 or more): fewer, fused kernels where launching them is "
                             "what a step costs, as on a GPU at small batches")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learning-rate", type=float, default=3e-4, help="AdamW learning rate (does not affect cost)")
    parser.add_argument("--large-apply", choices=("meta", "cpu", "none"), default="meta",
                        help="time surgery.apply on a T5-large config built on this device (default meta); none skips")
    parser.add_argument("--large-apply-repeats", type=int, default=2)
    parser.add_argument("--scores", type=Path, default=None,
                        help="CSV with columns recipe,score (or the finetune runner's results.csv: recipe,task,"
                             "metric,mean,...; rows are averaged per task, then over tasks): adds a Figure-1-style "
                             "plot (see runners.plot)")
    parser.add_argument("--output-dir", type=Path, default=Path("efficiency-results"),
                        help="where efficiency.md/.csv and samples.json go (default efficiency-results); a folder "
                             "holding an earlier run is refused unless --overwrite")
    parser.add_argument("--overwrite", action="store_true", help="replace the earlier run in --output-dir")
    args = parser.parse_args(argv)
    if args.device == "cuda" and args.clock == "cpu":
        parser.error("--clock cpu does not see GPU time; use cuda (the default on --device cuda) or wall")
    if args.device == "cpu" and args.clock == "cuda":
        parser.error("--clock cuda needs --device cuda; on the CPU use cpu (the default) or wall")
    if args.device == "cuda" and not _cuda_available():
        parser.error("--device cuda was asked for, but torch.cuda.is_available() is False")
    for option in ("batch_size", "source_length", "target_length", "steps", "repeats"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be ≥ 1")
    return args


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def run_or_mark_failed(candidate: Candidate, what: str, action: Callable[[], object]) -> object | None:
    """Run `action`; if it raises, the row records why and drops its model (the run goes on)."""
    from .rows import describe_error

    try:
        return action()
    except Exception as error:
        candidate.error = f"{what} failed: {describe_error(error)}"
        candidate.model = candidate.optimizer = None
        log(f"{candidate.name}: {candidate.error}")
        return None


def measure(args: argparse.Namespace) -> tuple[list[Row], dict[str, dict[str, list[float]]], ApplyTimes]:
    """Every measurement of the run; returns the rows, the raw time samples and the T5-large apply times."""
    import torch

    from .memory import MemoryMeasurement, measure_peak_memory
    from .ratios import add_ratios, to_row
    from .rows import DTYPES, REFERENCE_ROWS, build_base_model, forward_pass, make_batch, prepare_candidate
    from .rows import is_decoder_only, row_names, training_step
    from .timing import resolve_clock, time_interleaved, time_large_apply

    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    base = build_base_model(args.config, device, dtype, args.seed)
    batch = make_batch(base.config.vocab_size, args.batch_size, args.source_length, args.target_length, device,
                       args.seed + 1, decoder_only=is_decoder_only(args.config))

    candidates = []
    for name in row_names(args.recipes):
        candidate = prepare_candidate(name, base, args.learning_rate)
        log(f"{name}: " + (f"{candidate.trainable:,} trainable ({candidate.percent:.4f}%)" if candidate.ok else candidate.error))
        for note in candidate.notes:
            log(f"note: {note}")
        candidates.append(candidate)
    del base
    if args.compile:
        for candidate in (c for c in candidates if c.ok):
            candidate.model = torch.compile(candidate.model)

    for candidate in (c for c in candidates if c.ok):
        for _ in range(args.warmup):
            run_or_mark_failed(candidate, "training step", lambda: training_step(candidate, batch))
    log(f"warmed up ({args.warmup} step(s) per row)")

    memory: dict[str, MemoryMeasurement] = {}
    for candidate in (c for c in candidates if c.ok):
        measurement = run_or_mark_failed(candidate, "training step", lambda: measure_peak_memory(candidate, batch, device))
        if isinstance(measurement, MemoryMeasurement):
            memory[candidate.name] = measurement
    log("peak memory measured")
    measured = [c for c in candidates if c.ok]

    actions: dict[str, Callable[[], None]] = {f"step:{c.name}": (lambda c=c: training_step(c, batch)) for c in measured}
    for c in measured:
        if c.name in REFERENCE_ROWS:
            actions[f"forward:{c.name}"] = lambda c=c: forward_pass(c, batch)
    samples = time_interleaved(actions, device, args.repeats, args.steps,
                               on_round=lambda r: log(f"timing round {r + 1}/{args.repeats} done"))

    rows = [to_row(c, memory.get(c.name), samples, resolve_clock(args), args.steps) for c in candidates]
    add_ratios(rows)
    for candidate in candidates:  # free the models before timing T5-large apply
        candidate.model = candidate.optimizer = None
    gc.collect()

    large_apply: ApplyTimes = {}
    if args.large_apply != "none":
        recipes = [c.name for c in candidates if c.kind == "recipe" and c.ok]
        large_apply = time_large_apply(recipes, args.large_apply, args.large_apply_repeats)
        log("surgery.apply on T5-large timed")
    return rows, samples, large_apply


def main(argv: list[str] | None = None) -> dict[str, Path]:
    """Measure and write the tables; a bad --scores or --output-dir: one line on stderr, SystemExit(2), before any timing."""
    args = parse_args(argv)
    # The heavy imports before the folder is claimed: Ctrl-C during them leaves nothing behind.
    import torch

    from .report import report_markdown, write_outputs

    try:
        scores, lock = claim_inputs(args)
    except UsageError as error:
        print("error: " + " ".join(str(error).split()), file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None
    try:
        if args.threads > 0:
            torch.set_num_threads(args.threads)
        started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        machine = machine_description(torch.device(args.device))
        clock = time.perf_counter()
        rows, samples, large_apply = measure(args)
        markdown = report_markdown(args, argv, rows, large_apply, started, time.perf_counter() - clock, machine)
        with interrupts_deferred():  # Ctrl-C waits until the files are whole
            paths = write_outputs(args, markdown, rows, samples, large_apply, scores)
    finally:
        lock.release()
    print()
    print(markdown)
    print("written: " + ", ".join(str(p) for p in paths.values()))
    refuse_if_no_recipe_was_measured(rows)
    return paths


def refuse_if_no_recipe_was_measured(rows: list[Row]) -> None:
    """Exit 1, naming the first reason, when every recipe row failed (the tables are written anyway):
    e.g. an uninstalled checkout, whose engine finds no methods, measured only the reference rows."""
    recipes = [row for row in rows if row.kind == "recipe"]
    if recipes and all(row.error for row in recipes):
        print(f"error: no recipe could be measured ({len(recipes)} failed); the first: {recipes[0].name}: "
              f"{recipes[0].error}", file=sys.stderr)
        raise SystemExit(1)
