"""From measurements to table rows: medians, spreads and the round-paired ratios.

    to_row(candidate, memory, samples)   medians of the row's samples, and per-round medians
    add_ratios(rows)                     ÷ full-finetune and ÷ floor: memory by value, time as
                                         the median over rounds of the ratio within each round
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from .memory import MemoryMeasurement
from .rows import FLOOR, FULL, Candidate


@dataclass
class Row:
    """What the table shows for one row; times in seconds, memory in bytes."""

    name: str
    kind: str
    trainable: int = 0
    percent: float = float("nan")
    peak_bytes: float = float("nan")
    transient_bytes: float = float("nan")
    step_seconds: float = float("nan")  # by the run's clock (see --clock)
    step_wall_seconds: float = float("nan")
    step_spread: float = float("nan")  # interquartile range / median of the step samples
    forward_seconds: float = float("nan")
    apply_seconds: float | None = None
    error: str | None = None
    step_rounds: list[float] = field(default_factory=list)  # the row's median step in each round
    forward_rounds: list[float] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)
    ratio_quartiles: dict[str, tuple[float, float]] = field(default_factory=dict)


def spread(samples: list[float]) -> float:
    """Interquartile range relative to the median (0.05 = the middle half spans 5 % of it)."""
    if len(samples) < 2:
        return float("nan")
    q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return (q3 - q1) / statistics.median(samples)


def ratio(value: float, reference: float) -> float:
    if reference != reference or value != value or reference == 0:  # NaN-safe
        return float("nan")
    return value / reference


def per_round_medians(samples: list[float], steps: int) -> list[float]:
    """The median of each round's `steps` consecutive samples.

    >>> per_round_medians([1.0, 3.0, 2.0, 4.0], steps=2)
    [2.0, 3.0]
    """
    return [statistics.median(samples[start:start + steps]) for start in range(0, len(samples), steps)]


def paired_ratio(rounds: list[float], reference_rounds: list[float]) -> tuple[float, float, float]:
    """(median, first quartile, third quartile) over rounds of value ÷ the reference's value in that round.

    Pairing by round cancels drift that hits every row of a round alike (the machine's load, its
    clock), which a ratio of overall medians would keep.

    >>> paired_ratio([2.0, 4.0, 3.0], [1.0, 2.0, 3.0])
    (2.0, 1.5, 2.0)
    """
    ratios = [ratio(value, reference) for value, reference in zip(rounds, reference_rounds)]
    ratios = [r for r in ratios if r == r]
    if not ratios:
        return float("nan"), float("nan"), float("nan")
    if len(ratios) == 1:
        return ratios[0], ratios[0], ratios[0]
    q1, median, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    return median, q1, q3


def add_ratios(rows: list[Row]) -> None:
    """Memory ratios and round-paired step-time ratios to the full-finetune row and to the floor row."""
    by_name = {row.name: row for row in rows}
    for row in rows:
        for reference_name, suffix in ((FULL, "full"), (FLOOR, "floor")):
            reference = by_name.get(reference_name)
            if reference is None or reference.error:
                continue
            row.ratios[f"memory/{suffix}"] = ratio(row.peak_bytes, reference.peak_bytes)
            median, q1, q3 = paired_ratio(row.step_rounds, reference.step_rounds)
            row.ratios[f"time/{suffix}"], row.ratio_quartiles[f"time/{suffix}"] = median, (q1, q3)
        floor = by_name.get(FLOOR)
        if row.forward_rounds and floor is not None and floor.forward_rounds:
            median, q1, q3 = paired_ratio(row.forward_rounds, floor.forward_rounds)
            row.ratios["forward/floor"], row.ratio_quartiles["forward/floor"] = median, (q1, q3)


def to_row(candidate: Candidate, memory: MemoryMeasurement | None, samples: dict[str, dict[str, list[float]]],
           clock: str, steps_per_round: int) -> Row:
    row = Row(candidate.name, candidate.kind, candidate.trainable, candidate.percent,
              apply_seconds=candidate.apply_seconds, error=candidate.error)
    if candidate.error:
        return row
    if memory is not None:
        row.peak_bytes, row.transient_bytes = float(memory.peak_bytes), float(memory.transient_bytes)
    steps = samples[clock].get(f"step:{candidate.name}", [])
    if steps:
        row.step_seconds, row.step_spread = statistics.median(steps), spread(steps)
        row.step_wall_seconds = statistics.median(samples["wall"][f"step:{candidate.name}"])
        row.step_rounds = per_round_medians(steps, steps_per_round)
    forwards = samples[clock].get(f"forward:{candidate.name}", [])
    if forwards:
        row.forward_seconds = statistics.median(forwards)
        row.forward_rounds = per_round_medians(forwards, steps_per_round)
    return row
