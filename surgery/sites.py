"""Find insertion sites in a traced block from its dataflow.

A site is the output of a sublayer just before its dropout and residual add (the paper's
Figure 2). We find it by pattern, not by name::

    stream ──────────────────────────────┐
       └─ norm ─ SUBLAYER ─[getitem 0]─ site ─ dropout ─ add(stream, ·)

The sublayer is an attention module (self-attention when none of its inputs flows from the
encoder's states, cross-attention when one does) or a feed-forward module. Because only module
*classes* and dataflow are used, the same recipe works on T5 v1.0, v1.1/mT5 (gated FFN) and any
family that registers its classes.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import networkx as nx
import torch
import torch.fx as fx
from torch import nn

from .errors import TraceError
from .family import ModelFamily

AFTER_SELF_ATTENTION = "after_self_attention"
AFTER_CROSS_ATTENTION = "after_cross_attention"
AFTER_FFN = "after_ffn"
SITE_NAMES: tuple[str, ...] = (AFTER_SELF_ATTENTION, AFTER_CROSS_ATTENTION, AFTER_FFN)

_ADD_TARGETS = {operator.add, operator.iadd, torch.add}


@dataclass(frozen=True)
class SiteMatch:
    """One site in a graph: `output` is the sublayer's output, `consumer` the node that reads it
    on its way into the residual add (the dropout, or the add itself)."""

    name: str
    output: fx.Node
    consumer: fx.Node
    sublayer: str  # qualified name of the sublayer module, for people reading a plan


def to_networkx(graph: fx.Graph) -> nx.DiGraph:
    """The graph's dataflow as a networkx DiGraph (node name → node name), for queries and export."""
    flow = nx.DiGraph()
    for node in graph.nodes:
        flow.add_node(node.name, op=node.op, target=str(node.target))
        for source in node.all_input_nodes:
            flow.add_edge(source.name, node.name)
    return flow


def _is_residual_add(node: fx.Node) -> bool:
    is_add = (node.op == "call_function" and node.target in _ADD_TARGETS) or (
        node.op == "call_method" and node.target in ("add", "add_")
    )
    return is_add and sum(isinstance(arg, fx.Node) for arg in node.args[:2]) == 2


def _module(root: nn.Module, node: fx.Node) -> nn.Module | None:
    return root.get_submodule(node.target) if node.op == "call_module" else None


def find_sites(graph: fx.Graph, root: nn.Module, family: ModelFamily) -> dict[str, SiteMatch]:
    """Every site `graph` (traced from `root`) offers, by name.

    Raises TraceError when a site name would match two places (the recipe would be ambiguous).
    """
    flow = to_networkx(graph)
    encoder_states = [n.name for n in graph.nodes if n.op == "placeholder" and n.target == family.encoder_states_argument]
    found: dict[str, SiteMatch] = {}
    for add in graph.nodes:
        if not _is_residual_add(add):
            continue
        for branch in add.args[:2]:
            consumer, output = add, branch
            if isinstance(_module(root, branch), nn.Dropout):
                consumer, output = branch, branch.args[0]
            if not isinstance(output, fx.Node):
                continue
            producer = output
            if producer.op == "call_function" and producer.target is operator.getitem and producer.args[1] == 0:
                producer = producer.args[0]
            sublayer = _module(root, producer)
            if isinstance(sublayer, family.attention_classes):
                reads_encoder = any(nx.has_path(flow, source, producer.name) for source in encoder_states)
                name = AFTER_CROSS_ATTENTION if reads_encoder else AFTER_SELF_ATTENTION
            elif isinstance(sublayer, family.feed_forward_classes):
                name = AFTER_FFN
            else:
                continue
            if name in found:
                raise TraceError(f"site {name!r} matches two sublayers ({found[name].sublayer}, {producer.target}); cannot choose one")
            found[name] = SiteMatch(name, output, consumer, str(producer.target))
    return found
