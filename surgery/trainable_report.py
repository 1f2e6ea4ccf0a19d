"""The trainable-parameter report: counts by group, total, and percentage of the base model."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn


def count_groups(model: nn.Module, groups: dict[str, list[str]]) -> dict[str, int]:
    """Numbers per trained group (an adapter's, whether or not it is the one training now)."""
    parameters = dict(model.named_parameters())
    return {group: sum(parameters[n].numel() for n in names) for group, names in groups.items()}


@dataclass
class Report:
    """Trainable parameters by group. `percent` is of the base model, as in the paper's tables.

    >>> print(Report("demo", {"inserted modules": 1000, "layer norms": 24}, base_parameters=100_000, added_parameters=1000))
    recipe 'demo'
      group                  parameters
      inserted modules            1,000
      layer norms                    24
      trainable                   1,024  (1.0240% of 100,000 base parameters)
    """

    recipe: str
    groups: dict[str, int]
    base_parameters: int
    added_parameters: int
    closed_form: list[tuple[str, str, int]] = field(default_factory=list)
    adapter: str | None = None   # the adapter's name, where it is not the default

    @property
    def trainable(self) -> int:
        return sum(self.groups.values())

    @property
    def percent(self) -> float:
        return 100.0 * self.trainable / self.base_parameters

    def __str__(self) -> str:
        named = f", adapter {self.adapter!r}" if self.adapter else ""
        lines = [f"recipe {self.recipe!r}{named}", f"  {'group':<20} {'parameters':>12}"]
        lines += [f"  {group:<20} {count:>12,}" for group, count in self.groups.items()]
        lines.append(f"  {'trainable':<20} {self.trainable:>12,}  ({self.percent:.4f}% of {self.base_parameters:,} base parameters)")
        if self.closed_form:
            lines.append("  closed forms:")
            lines += [f"    {label:<24} {formula:<28} = {value:,}" for label, formula, value in self.closed_form]
        return "\n".join(lines)
