"""The efficiency issue's targets next to what this run measured: met, MISSED or not measured."""

from __future__ import annotations

from dataclasses import dataclass

from .ratios import Row
from .rows import TRACED
from .tables import fmt, markdown_table
from .timing import ApplyTimes

# The targets of the efficiency issue: (what, row, measured column, reference, threshold).
STEP_TIME_TARGET = 1.05
MEMORY_TARGET = 1.08
TRACING_TARGET = 1.02
LARGE_APPLY_TARGET_S = 2.0


@dataclass
class Target:
    what: str
    measured: float | None
    threshold: float
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.measured is None or self.measured != self.measured:
            return "not measured"
        return "met" if self.measured <= self.threshold else "MISSED"


def quartiles_note(row: Row, key: str) -> str:
    q1, q3 = row.ratio_quartiles.get(key, (float("nan"), float("nan")))
    return f"per-round ratios, middle half: {fmt(q1, '.3f')}–{fmt(q3, '.3f')}"


def collect_targets(rows: list[Row], large_apply: ApplyTimes, clock: str) -> list[Target]:
    """Measured values next to the issue's targets (ratios are ≤ targets, apply time < 2 s)."""
    by_name = {row.name: row for row in rows}
    targets: list[Target] = []
    for recipe in ("compacter++", "compacter"):
        row = by_name.get(recipe)
        if row is None or row.error:
            targets.append(Target(f"{recipe} step time ÷ floor", None, STEP_TIME_TARGET, row.error if row else "not run"))
            continue
        targets.append(Target(f"{recipe} step time ÷ floor", row.ratios.get("time/floor"), STEP_TIME_TARGET,
                              quartiles_note(row, "time/floor")))
        targets.append(Target(f"{recipe} peak memory ÷ floor", row.ratios.get("memory/floor"), MEMORY_TARGET))
    traced = by_name.get(TRACED)
    if traced and not traced.error:
        targets.append(Target("traced identity forward ÷ eager untouched", traced.ratios.get("forward/floor"),
                              TRACING_TARGET, "eval mode, no_grad; " + quartiles_note(traced, "forward/floor")))
        targets.append(Target("traced identity training step ÷ eager untouched", traced.ratios.get("time/floor"),
                              TRACING_TARGET, "layer norms trained in both; " + quartiles_note(traced, "time/floor")))
    for recipe, value in large_apply.items():
        if isinstance(value, dict):
            targets.append(Target(f"surgery.apply({recipe!r}) on T5-large, seconds", value[clock], LARGE_APPLY_TARGET_S,
                                  f"wall {value['wall']:.2f} s" if clock != "wall" else ""))
        else:
            targets.append(Target(f"surgery.apply({recipe!r}) on T5-large, seconds", None, LARGE_APPLY_TARGET_S, value))
    return targets


def targets_table(targets: list[Target]) -> str:
    lines = [[t.what, fmt(t.measured, ".3f"), f"≤ {t.threshold:g}" if "seconds" not in t.what else f"< {t.threshold:g}",
              t.verdict, t.note] for t in targets]
    return markdown_table(["target", "measured", "threshold", "verdict", "note"], lines)
