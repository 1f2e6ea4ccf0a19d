"""What a plan says: the splices, counts and checkpoint layout of one adapter, and every adapter's place.

`surgery.plan` builds a `Plan`; `Plan.summary()` and `Plan.to_networkx()` show it, including the
adapters the model already has at each site (the new one marked), so a user sees what a second
adapter would sit next to before anything changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import torch

from .family import ModelDims, ModelFamily
from .method import Method
from .naming import DEFAULT_ADAPTER, SPLICED
from .recipe import Recipe
from .trainable_report import Report


@dataclass(frozen=True)
class PlannedSplice:
    stack: str
    layer: int
    site: str
    module_path: str
    parameters: int


@dataclass(frozen=True)
class SiteOccupancy:
    """The adapters with a module at one site of one block, in the order they run (after the plan)."""

    stack: str
    block: str
    site: str
    adapters: tuple[str, ...]
    module_paths: tuple[str, ...]
    parameters: tuple[int, ...] = ()


@dataclass
class Plan:
    """What `apply` will do: read it, then apply it. Nothing here touched the model."""

    recipe: Recipe
    method: Method
    family: ModelFamily
    dims: ModelDims
    layers: dict[str, list[int]]
    splices: list[PlannedSplice]
    groups: dict[str, int]
    base_parameters: int
    added_parameters: int
    closed_form: list[tuple[str, str, int]] = field(default_factory=list)
    # name → (shape, dtype) of every tensor an adapter checkpoint of this recipe holds
    adapter_layout: dict[str, tuple[tuple[int, ...], torch.dtype]] = field(default_factory=dict)
    # the added tensors that do not train (e.g. a frozen rule): first-format checkpoints lack them
    frozen_added: tuple[str, ...] = ()
    adapter: str = DEFAULT_ADAPTER
    # every spliced site of the model once this plan is applied, and the adapters there
    occupancy: list[SiteOccupancy] = field(default_factory=list)
    # adapters that rewrite the whole model (no sites): name → method, the planned one included
    whole_model: dict[str, str] = field(default_factory=dict)

    @property
    def trainable_parameters(self) -> int:
        return sum(self.groups.values())

    @property
    def report(self) -> Report:
        return Report(self.recipe.name, dict(self.groups), self.base_parameters, self.added_parameters, self.closed_form,
                      adapter=None if self.adapter == DEFAULT_ADAPTER else self.adapter)

    def summary(self) -> str:
        named = "" if self.adapter == DEFAULT_ADAPTER else f" as adapter {self.adapter!r}"
        lines = [f"plan for recipe {self.recipe.name!r}{named}: method {self.method.name!r}, family {self.family.name}"]
        for stack, chosen in self.layers.items():
            sites = sorted({s.site for s in self.splices if s.stack == stack})
            lines.append(f"  {stack}: blocks {chosen} at sites {sites or '—'}")
        lines.append(f"  {len(self.splices)} modules spliced in")
        lines += self.occupancy_lines()
        lines.append(str(self.report))
        return "\n".join(lines)

    def occupancy_lines(self) -> list[str]:
        """Which adapters sit at each site (runs of blocks with the same ones joined), the planned one starred."""
        runs: list[tuple[str, str, tuple[str, ...], list[int]]] = []
        for place in self.occupancy:
            index = int(place.block.rsplit(".", 1)[1])
            if runs and runs[-1][:3] == (place.stack, place.site, place.adapters) and runs[-1][3][-1] == index - 1:
                runs[-1][3].append(index)
            else:
                runs.append((place.stack, place.site, place.adapters, [index]))
        lines = ["  adapters at each site, in the order they run (* the planned one):"] if runs else []
        for stack, site, adapters, blocks in runs:
            where = f"block {blocks[0]}" if len(blocks) == 1 else f"blocks {blocks[0]}-{blocks[-1]}"
            shown = ", ".join(f"{a}*" if a == self.adapter else a for a in adapters)
            lines.append(f"    {stack} {where} {site}: {shown}")
        if self.whole_model:
            shown = ", ".join(f"{a}{'*' if a == self.adapter else ''} ({m})" for a, m in self.whole_model.items())
            lines.append(f"  whole-model adapters: {shown}")
        return lines

    def to_networkx(self) -> nx.DiGraph:
        """model → stack → block → site → inserted module of each adapter there (attributes: adapter, parameters,
        planned), so the graph shows the adapters already at a site next to the planned one."""
        graph = nx.DiGraph()
        graph.add_node("model", kind="model", recipe=self.recipe.name, adapter=self.adapter)
        places = self.occupancy or [SiteOccupancy(s.stack, s.module_path.rsplit(f".{SPLICED}.", 1)[0], s.site,
                                                  (self.adapter,), (s.module_path,), (s.parameters,))
                                    for s in self.splices]
        for place in places:
            graph.add_edge("model", place.stack)
            graph.add_edge(place.stack, place.block)
            site = f"{place.block}:{place.site}"
            graph.add_edge(place.block, site, kind="site")
            counts = place.parameters or (None,) * len(place.adapters)
            for order, (adapter, path, count) in enumerate(zip(place.adapters, place.module_paths, counts)):
                graph.add_node(path, kind="module", adapter=adapter, order=order, planned=adapter == self.adapter,
                               parameters=count)
                graph.add_edge(site, path)
        for adapter, method in self.whole_model.items():
            graph.add_node(f"adapter:{adapter}", kind="whole-model adapter", adapter=adapter, method=method,
                           planned=adapter == self.adapter)
            graph.add_edge("model", f"adapter:{adapter}")
        return graph
