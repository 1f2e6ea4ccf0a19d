"""Which adapters a forward pass runs: the active ones, none (disabled), or one per example (mixed batch).

One `Routing` object per model (``model.surgery.routing``) is read by everything an adapter
inserts: the site dispatch in every spliced block (`run_site`), the hooks of whole-model methods
(through `surgery.adapter_scope.AdapterScope.is_active`) and the hooks that give each adapter its own
copies of the base tensors it trains (`surgery.base_copies`). Changing it (`surgery.set_active`,
`surgery.disabled`, `surgery.mixed_batch`) retraces nothing.

A site runs the active adapters in order: ``x → a₁(x) → a₂(a₁(x)) …``. In a mixed batch each
example names one adapter (or None for the base); a site then runs each adapter on the rows of
its examples only (gathered, computed, scattered back). A tensor with more rows than examples
(``generate`` with beams repeats every example ``num_beams`` times, consecutively) maps row r to
example ``r // (rows / examples)``.

>>> routing = Routing(active=("default",))
>>> routing.is_active("default"), routing.in_effect()
(True, ('default',))
>>> routing.examples = ("a", None, "a")
>>> [(name, rows.tolist()) for name, rows in routing.row_groups(6, torch.device("cpu"))]
[('a', [0, 1, 4, 5])]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .errors import SurgeryError
from .naming import DEFAULT_ADAPTER, SPLICED


@dataclass
class Routing:
    """The adapters in effect. `version` changes with every change (caches compare it)."""

    active: tuple[str, ...] = (DEFAULT_ADAPTER,)
    disabled: int = 0                                  # depth of nested `surgery.disabled` blocks
    examples: tuple[str | None, ...] | None = None     # mixed batch: one adapter name (or None) per example
    version: int = 0
    _rows: dict = field(default_factory=dict, repr=False, compare=False)

    def changed(self) -> None:
        self.version += 1
        self._rows.clear()

    def surgery_snapshot(self) -> tuple:
        return self.active, self.disabled, self.examples

    def surgery_restore(self, saved: tuple) -> None:
        self.active, self.disabled, self.examples = saved
        self.changed()

    def in_effect(self) -> tuple[str, ...]:
        """The adapters every row runs (empty when disabled or in a mixed batch)."""
        return () if self.disabled or self.examples is not None else self.active

    def is_active(self, name: str) -> bool:
        """Whether `name` is in effect for the whole batch."""
        return not self.disabled and self.examples is None and name in self.active

    @property
    def mixed(self) -> bool:
        return self.examples is not None and not self.disabled

    def example_of_rows(self, rows: int) -> int:
        """How many consecutive rows each example has in a tensor of `rows` rows (1, or num_beams, ...)."""
        assert self.examples is not None
        count = len(self.examples)
        if rows % count:
            raise SurgeryError(f"the mixed batch names an adapter for {count} examples, but a tensor of this forward "
                               f"has {rows} rows (not a multiple of {count}): give surgery.mixed_batch one adapter name (or None) per example")
        return rows // count

    def row_groups(self, rows: int, device: torch.device) -> list[tuple[str, torch.Tensor | None]]:
        """(adapter, row indices) for every adapter the mixed batch names; indices None: every row."""
        key = ("groups", rows, device)
        if key not in self._rows:
            repeat = self.example_of_rows(rows)
            names = [name for name in dict.fromkeys(self.examples) if name is not None]
            groups: list[tuple[str, torch.Tensor | None]] = []
            for name in names:
                picked = [r for r in range(rows) if self.examples[r // repeat] == name]
                groups.append((name, None if len(picked) == rows else torch.tensor(picked, device=device)))
            self._rows[key] = groups
        return self._rows[key]

    def row_index(self, rows: int, device: torch.device) -> tuple[list[str | None], torch.Tensor]:
        """(the distinct entries of the mixed batch, each row's position in that list)."""
        key = ("index", rows, device)
        if key not in self._rows:
            repeat = self.example_of_rows(rows)
            distinct = list(dict.fromkeys(self.examples))
            position = {name: i for i, name in enumerate(distinct)}
            index = torch.tensor([position[self.examples[r // repeat]] for r in range(rows)], device=device)
            self._rows[key] = (distinct, index)
        return self._rows[key]

    def row_mask(self, name: str, rows: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor | None:
        """(rows,) 1 where the row's example names `name`, else 0; None when no example names it."""
        key = ("mask", name, rows, device, dtype)
        if key not in self._rows:
            repeat = self.example_of_rows(rows)
            values = [1.0 if self.examples[r // repeat] == name else 0.0 for r in range(rows)]
            self._rows[key] = torch.tensor(values, device=device, dtype=dtype) if any(values) else None
        return self._rows[key]


def site_module(spliced: nn.ModuleDict, adapter: str, site: str) -> nn.Module | None:
    """The module `adapter` spliced at `site` of this block (``spliced[adapter][site]``), if any."""
    own = spliced._modules.get(adapter)
    return own._modules.get(site) if own is not None else None


def run_site(spliced: nn.ModuleDict, site: str, hidden: torch.Tensor) -> torch.Tensor:
    """What a spliced block computes at `site`: the adapters in effect, in order, on the sublayer's output."""
    routing: Routing = spliced.surgery_routing
    if routing.examples is not None and not routing.disabled:
        return _run_mixed(spliced, site, hidden, routing)
    for adapter in routing.active if not routing.disabled else ():
        module = site_module(spliced, adapter, site)
        if module is not None:
            hidden = module(hidden)
    return hidden


def _run_mixed(spliced: nn.ModuleDict, site: str, hidden: torch.Tensor, routing: Routing) -> torch.Tensor:
    output = hidden
    for adapter, rows in routing.row_groups(hidden.shape[0], hidden.device):
        module = site_module(spliced, adapter, site)
        if module is None:
            continue
        if rows is None:
            output = module(output)
        else:  # each row belongs to one adapter: read the sublayer's output, write the adapter's rows
            output = output.index_copy(0, rows, module(hidden.index_select(0, rows)))
    return output


def sites_in_use(spliced: nn.ModuleDict) -> list[str]:
    """Every site at which some adapter of this block has a module, in site order."""
    from .sites import SITE_NAMES

    used = set()
    for module in spliced.values():
        used.update(module.keys())
    return [site for site in SITE_NAMES if site in used]


def adapters_in_block(block: nn.Module) -> dict[str, list[str]]:
    """site → the adapters with a module there, in the order they were applied."""
    spliced = getattr(block, SPLICED, None)
    found: dict[str, list[str]] = {}
    if spliced is None:
        return found
    for adapter, module in spliced.items():
        for site in module.keys():
            found.setdefault(site, []).append(adapter)
    return found
