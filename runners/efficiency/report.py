"""What a run writes: efficiency.md (the tables and the protocol), efficiency.csv, samples.json.

    report_markdown(args, rows, ...)   the tables (runners.efficiency.tables) and the targets
    write_outputs(args, markdown, ...) efficiency.md, efficiency.csv, samples.json
                                       (+ figure1.png with --scores; see runners.plot)
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from dataclasses import asdict
from pathlib import Path

from .ratios import Row
from .rows import describe_shape, is_decoder_only
from .tables import MIB, efficiency_table, paper_comparison_table, tracing_table
from .targets import collect_targets, targets_table
from .timing import ApplyTimes, resolve_clock

CSV_COLUMNS = (
    "recipe", "kind", "trainable_params", "trainable_percent", "peak_memory_mib", "transient_memory_mib",
    "memory_ratio_full", "memory_ratio_floor", "clock", "step_ms", "step_spread", "time_ratio_full",
    "time_ratio_floor", "step_wall_ms", "forward_ms", "apply_s", "error",
)


def csv_record(row: Row, clock: str) -> dict[str, object]:
    def number(value: float | None, scale: float = 1.0, digits: int = 4) -> str:
        return "" if value is None or value != value else f"{value * scale:.{digits}f}"

    return {
        "recipe": row.name,
        "kind": row.kind,
        "trainable_params": row.trainable if not row.error else "",
        "trainable_percent": number(row.percent, digits=6) if not row.error else "",
        "peak_memory_mib": number(row.peak_bytes, 1 / MIB, 2),
        "transient_memory_mib": number(row.transient_bytes, 1 / MIB, 2),
        "memory_ratio_full": number(row.ratios.get("memory/full")),
        "memory_ratio_floor": number(row.ratios.get("memory/floor")),
        "clock": clock,
        "step_ms": number(row.step_seconds, 1e3, 1),
        "step_spread": number(row.step_spread, digits=3),
        "time_ratio_full": number(row.ratios.get("time/full")),
        "time_ratio_floor": number(row.ratios.get("time/floor")),
        "step_wall_ms": number(row.step_wall_seconds, 1e3, 1),
        "forward_ms": number(row.forward_seconds, 1e3, 1),
        "apply_s": number(row.apply_seconds, digits=3),
        "error": row.error or "",
    }


def write_csv(rows: list[Row], path: Path, clock: str) -> None:
    from runners.output_folder import write_text

    handle = io.StringIO()
    writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, lineterminator="\r\n")  # csv's default, as before
    writer.writeheader()
    for row in rows:
        writer.writerow(csv_record(row, clock))
    write_text(path, handle.getvalue())


def command_line(argv: list[str] | None) -> str:
    import sys

    return "python -m runners.efficiency " + " ".join(sys.argv[1:] if argv is None else argv)



CLOCK_WORDS = {"cpu": "CPU time of the process (time.process_time)", "wall": "wall clock",
               "cuda": "CUDA events recorded before and after each step (torch.cuda.Event)"}


def report_markdown(args: argparse.Namespace, argv: list[str] | None, rows: list[Row],
                    large_apply: ApplyTimes, started: str, seconds: float, machine: str) -> str:
    lines = [
        f"## Efficiency, {args.config} config (random init), batch {args.batch_size} × {args.source_length} source / "
        f"{args.target_length} target tokens, {args.device}, {args.dtype}",
        "",
        f"- command: `{command_line(argv)}`",
        f"- date: {started}; wall time {seconds / 60:.1f} min",
        f"- machine: {machine}",
        f"- model: {describe_shape(args.config)}, train mode"
        + (", every row's model through torch.compile" if args.compile else "")
        + ("; source and target as one sequence, the loss on the target" if is_decoder_only(args.config) else ""),
        f"- time: median of {args.repeats} interleaved rounds × {args.steps} steps (forward + backward + AdamW step) "
        f"after {args.warmup} warm-up step(s), {CLOCK_WORDS[resolve_clock(args)]}; spread = interquartile range ÷ median; "
        "time ratios = median over rounds of the ratio within each round",
        "- memory: static (parameters, buffers, AdamW state) + transient peak of one step "
        + ("(CUDA max_memory_allocated)" if args.device == "cuda" else "(torch.profiler CPU allocation events)"),
        "",
        efficiency_table(rows),
        "",
        "### Against the paper's Table 3 (Δ% to full fine-tuning; the paper: T5-base, MNLI epoch, 24 GB GPU)",
        "",
        paper_comparison_table(rows),
        "",
        "### Tracing overhead (engine-generated forward with nothing spliced vs the untouched eager model)",
        "",
        tracing_table(rows),
        "",
        "### Targets",
        "",
        targets_table(collect_targets(rows, large_apply, resolve_clock(args))),
    ]
    if large_apply:
        lines += ["", f"surgery.apply timed on a T5-large config built on the {args.large_apply} device "
                      f"(model construction not timed; median of {args.large_apply_repeats}; "
                      f"{CLOCK_WORDS[resolve_clock(args)]})."]
    return "\n".join(lines) + "\n"


def write_outputs(args: argparse.Namespace, markdown: str, rows: list[Row], samples: dict[str, dict[str, list[float]]],
                  large_apply: ApplyTimes, scores: dict[str, float] | None = None) -> dict[str, Path]:
    """efficiency.md, efficiency.csv, samples.json (each written whole), and figure1.png with `scores`."""
    from runners.output_folder import write_text

    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "efficiency.md", "csv": out / "efficiency.csv", "samples": out / "samples.json"}
    write_text(paths["markdown"], markdown)
    write_csv(rows, paths["csv"], resolve_clock(args))
    raw = {"arguments": {k: str(v) for k, v in vars(args).items()}, "seconds_by_clock": samples,
           "large_apply_seconds": large_apply, "rows": [asdict(row) for row in rows]}
    write_text(paths["samples"], json.dumps(raw, indent=1, default=str))
    if scores is not None:
        from runners.plot import load_efficiency_rows, plot_tradeoff

        paths["figure"] = out / "figure1.png"
        plot_tradeoff(load_efficiency_rows(paths["csv"]), scores, paths["figure"],
                      title=f"{args.config}, batch {args.batch_size}×{args.source_length}, {args.device}")
    return paths
