"""Turn a block into a spliced block: same object, same parameters, a forward generated from its
rewritten graph.

The block keeps its identity and its class in the MRO (`isinstance(block, T5Block)` stays true,
which transformers relies on to record hidden states, and the gradient-checkpointing `__call__`
is inherited). Inserted modules live in `block.spliced` (a ModuleDict), so `state_dict`, `.to()`,
DDP and `save_pretrained` see them as ordinary submodules: ``spliced[<adapter>][<site>]``. At each site in use the graph calls
`surgery.routing.run_site`, which runs the adapters in effect (in order, none, or one per example),
so switching adapters retraces nothing; adding or removing one retraces the block.

The graph bakes in the hidden-state dtype it was traced for (T5 clamps fp16 activations); the
block records that dtype and re-traces on the first call with another dtype. Nothing else
re-traces: every keyword argument the block receives reaches the calls its code passes its
`**kwargs` to, and `training` flags are read when the graph runs (see `surgery.tracing`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.fx as fx
from torch import nn

from .family import ModelFamily
from .naming import SPLICED
from .routing import Routing, run_site, sites_in_use
from .sites import SiteMatch, find_sites
from .tracing import pass_keywords_through, trace_block


def compile_graph(graph: fx.Graph) -> Callable:
    """Python function `forward(self, ...)` generated from `graph`, resolving modules on `self`."""
    code = graph.python_code(root_module="self")
    namespace = dict(code.globals)
    exec(compile(code.src, "<spliced block>", "exec"), namespace)  # noqa: S102
    return namespace["forward"]


class SplicedBlockMixin:
    """Mixed in front of the block's own class; dispatches to the generated forward."""

    _surgery_family: ModelFamily
    _surgery_dtype: torch.dtype
    _surgery_forward: Callable

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs):
        if hidden_states.dtype != self._surgery_dtype:
            retrace(self, hidden_states.dtype)  # e.g. model.half() after surgery: keep T5's fp16 clamp
        return self._surgery_forward(self, hidden_states, *args, **kwargs)

    def __getstate__(self):
        # The generated forward is rebuilt on the first call after unpickling (it is a function
        # made at run time, which pickle cannot name).
        state = dict(super().__getstate__())
        state.pop("_surgery_forward", None)
        state["_surgery_dtype"] = None
        return state

    def surgery_graph_code(self) -> str:
        """The Python source of the rewritten forward, for people who want to read it."""
        return build_graph(self, self._surgery_dtype).python_code(root_module="self").src


_SPLICED_CLASSES: dict[type, type] = {}


def spliced_class(block_class: type[nn.Module]) -> type[nn.Module]:
    """`Spliced<Block>`: the mixin in front of the block's class, made once per block class.

    It is published as an attribute of this module (see `__getattr__` below), so pickle can name it.
    """
    if block_class not in _SPLICED_CLASSES:
        name = f"Spliced{block_class.__name__}"
        _SPLICED_CLASSES[block_class] = type(name, (SplicedBlockMixin, block_class), {"__module__": __name__, "__qualname__": name})
    return _SPLICED_CLASSES[block_class]


def __getattr__(name: str) -> type[nn.Module]:
    """Resolve `surgery.splice.Spliced<Block>` for unpickling in a fresh process."""
    from .family_registry import FAMILIES

    for family in FAMILIES:
        for block_class in family.block_classes:
            if name == f"Spliced{block_class.__name__}":
                return spliced_class(block_class)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def splice_dispatch(graph: fx.Graph, site: SiteMatch) -> fx.Node:
    """Insert `run_site(self.spliced, site, output)` on the site's output; only the residual branch reads it."""
    with graph.inserting_after(site.output):
        holder = graph.get_attr(SPLICED)
    with graph.inserting_after(holder):
        inserted = graph.call_function(run_site, (holder, site.name, site.output))
    site.consumer.replace_input_with(site.output, inserted)
    return inserted


def build_graph(block: nn.Module, dtype: torch.dtype, traced: fx.Graph | None = None) -> fx.Graph:
    """Trace the block (as its original class) and put a site dispatch wherever an adapter has a module.

    `traced`: a graph of this block as its original class, traced for `dtype`, that the caller
    already made and gives up (it is rewritten in place); saves tracing the block again.
    """
    family: ModelFamily = block._surgery_family
    graph = traced
    if graph is None:
        original = type(block)
        block.__class__ = family.declared_block_class(block) if isinstance(block, SplicedBlockMixin) else original
        try:
            graph = trace_block(block, family, dtype, where=getattr(block, "_surgery_name", "block"))
        finally:
            block.__class__ = original
    sites = find_sites(graph, block, family)
    for site_name in sites_in_use(getattr(block, SPLICED)):
        splice_dispatch(graph, sites[site_name])
    pass_keywords_through(graph)
    graph.lint()
    return graph


def retrace(block: nn.Module, dtype: torch.dtype, traced: fx.Graph | None = None) -> None:
    graph = build_graph(block, dtype, traced)
    block._surgery_forward = compile_graph(graph)
    block._surgery_dtype = dtype


def splice_block(block: nn.Module, family: ModelFamily, modules: dict[str, nn.Module], dtype: torch.dtype, name: str,
                 adapter: str, traced: fx.Graph | None = None, routing: Routing | None = None) -> None:
    """Insert `modules` (site name → module) of `adapter` into `block` in place.

    The caller has checked that every site exists in this block (the plan does, on a replica).
    `traced`: the block's graph for `dtype` if the caller already traced it (see `build_graph`);
    (a trace of its original class, as `trace_block` makes). `routing`: the model's (`surgery.routing`).
    """
    if not isinstance(block, SplicedBlockMixin):
        block._surgery_family = family
        block._surgery_name = name
        block._surgery_original_class = type(block)
        block.add_module(SPLICED, nn.ModuleDict())
    spliced = getattr(block, SPLICED)
    if routing is not None:
        spliced.surgery_routing = routing
    if modules:
        spliced.add_module(adapter, nn.ModuleDict(modules))
    retrace(block, dtype, traced)
    block.__class__ = spliced_class(family.declared_block_class(block))


def unsplice_adapter(block: nn.Module, adapter: str) -> None:
    """Take `adapter`'s modules out of `block`; a block left with none gets back its own class and forward."""
    spliced = getattr(block, SPLICED)
    if adapter in spliced:
        del spliced[adapter]
    if len(spliced):
        retrace(block, block._surgery_dtype or next(p.dtype for p in block.parameters() if p.is_floating_point()))
        return
    block.__class__ = block.__dict__.pop("_surgery_original_class", block._surgery_family.declared_block_class(block))
    delattr(block, SPLICED)
    for attribute in ("_surgery_family", "_surgery_name", "_surgery_dtype", "_surgery_forward"):
        block.__dict__.pop(attribute, None)
