"""The markdown tables of the report: the Table-3-like table, the paper comparison, tracing overhead."""

from __future__ import annotations

from .ratios import Row, ratio
from .rows import FLOOR, TRACED

MIB = 2**20


# Paper Table 3 (T5-base, MNLI, 24 GB GPU, one epoch): Δ% of peak memory and of time per epoch
# relative to full fine-tuning, as printed in the paper's Δ% columns. (Its MB columns do not all
# give these Δ%: 118.35 / 167.99 is −29.5 %, the Δ% column says −41.94 % for Compacter++.)
PAPER_TABLE3_DELTA_PERCENT: dict[str, tuple[float, float]] = {
    "adapter": (-35.45, -24.50),
    "pfeiffer-adapter": (-41.88, -33.09),
    "adapterdrop": (-40.68, -33.35),
    "adapter-lowrank": (-35.69, -22.36),
    "prompt-tuning-r": (24.42, 5.72),
    "prompt-tuning-t": (24.42, 5.72),
    "intrinsic-said": (41.14, 241.82),
    "bitfit": (-64.20, -35.06),
    "phm-adapter": (-35.55, -15.62),
    "compacter": (-35.57, -13.41),
    "compacter++": (-41.94, -26.51),
}


def fmt(value: float | None, pattern: str) -> str:
    return "—" if value is None or value != value else format(value, pattern)


def markdown_table(header: list[str], lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join(out)


def efficiency_table(rows: list[Row]) -> str:
    """The Table-3-like table: trainable %, memory and time, each with its ratios."""
    header = ["row", "trainable params", "trainable %", "peak MiB", "step MiB", "mem ÷ full", "mem ÷ floor",
              "step ms", "spread", "time ÷ full", "time ÷ floor", "wall ms"]
    lines = []
    for row in rows:
        if row.error:
            lines.append([row.name] + ["—"] * 10 + [f"not measured: {row.error}"])
            continue
        lines.append([
            row.name, f"{row.trainable:,}", fmt(row.percent, ".4f"), fmt(row.peak_bytes / MIB, ".1f"),
            fmt(row.transient_bytes / MIB, ".1f"), fmt(row.ratios.get("memory/full"), ".3f"),
            fmt(row.ratios.get("memory/floor"), ".3f"), fmt(row.step_seconds * 1e3, ".0f"),
            fmt(100 * row.step_spread, ".1f") + ("%" if row.step_spread == row.step_spread else ""),
            fmt(row.ratios.get("time/full"), ".3f"), fmt(row.ratios.get("time/floor"), ".3f"),
            fmt(row.step_wall_seconds * 1e3, ".0f"),
        ])
    return markdown_table(header, lines)


def paper_comparison_table(rows: list[Row]) -> str:
    """This run's Δ% to full fine-tuning next to the paper's Table 3 Δ% (T5-base on a GPU)."""
    lines = []
    for row in rows:
        if row.name not in PAPER_TABLE3_DELTA_PERCENT or row.error:
            continue
        paper_memory, paper_time = PAPER_TABLE3_DELTA_PERCENT[row.name]
        ours_memory = 100 * (row.ratios.get("memory/full", float("nan")) - 1)
        ours_time = 100 * (row.ratios.get("time/full", float("nan")) - 1)
        lines.append([row.name, f"{paper_memory:+.1f}%", fmt(ours_memory, "+.1f") + "%", f"{paper_time:+.1f}%",
                      fmt(ours_time, "+.1f") + "%"])
    return markdown_table(["recipe", "paper Δ memory", "this run Δ memory", "paper Δ time", "this run Δ time"], lines)


def tracing_table(rows: list[Row]) -> str:
    by_name = {row.name: row for row in rows}
    floor, traced = by_name.get(FLOOR), by_name.get(TRACED)
    if not floor or not traced or floor.error or traced.error:
        return "(tracing comparison not measured)"
    lines = [
        ["forward (eval, no_grad), ms", fmt(floor.forward_seconds * 1e3, ".1f"), fmt(traced.forward_seconds * 1e3, ".1f"),
         fmt(traced.ratios.get("forward/floor"), ".3f")],
        ["training step, ms", fmt(floor.step_seconds * 1e3, ".1f"), fmt(traced.step_seconds * 1e3, ".1f"),
         fmt(traced.ratios.get("time/floor"), ".3f")],
        ["peak memory MiB", fmt(floor.peak_bytes / MIB, ".1f"), fmt(traced.peak_bytes / MIB, ".1f"),
         fmt(ratio(traced.peak_bytes, floor.peak_bytes), ".3f")],
    ]
    return markdown_table(["measure", "eager untouched (floor)", "traced identity", "ratio"], lines)
