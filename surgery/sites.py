"""Find insertion sites in a traced block from its dataflow.

A site is the output of a sublayer just before its dropout and residual add (the paper's
Figure 2). We find it by pattern, not by name::

    stream ──────────────────────────────────────┐
       └─ [norm] ─ SUBLAYER ─[getitem 0]─ site ─[dropout]─ add(stream, ·) ─[norm]

Pre-norm (T5, Llama, GPT-2, mBART) and post-norm (BART, BERT) blocks both fit: the residual
branch of an add is what one operand computes from the other (the nodes upstream of it and not
upstream of the stream). A branch holding an attention module is an attention site (a
cross-attention when the encoder's states flow into that attention, a self-attention otherwise);
a branch holding a feed-forward module and no attention is the FFN site. Dropout is recognised as
a module (`nn.Dropout`) or as a function (`nn.functional.dropout`, BART's). A module counts as an
attention or feed-forward module when it, or a module around it that the tracer followed (a
family's `traced_through`, e.g. BERT's attention with its output layer), is of a class the family
declares. Because only module *classes* and dataflow are used, the same recipe works on every
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
_DROPOUT_FUNCTIONS = {torch.nn.functional.dropout, torch.dropout}


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


def _is_dropout(root: nn.Module, node: fx.Node) -> bool:
    return isinstance(_module(root, node), nn.Dropout) or (node.op == "call_function" and node.target in _DROPOUT_FUNCTIONS)


def _is_of(root: nn.Module, node: fx.Node, classes: tuple[type[nn.Module], ...]) -> bool:
    """Whether the module `node` calls, or a module around it inside `root`, is one of `classes`."""
    if node.op != "call_module" or not classes:
        return False
    parts = str(node.target).split(".")
    return any(isinstance(root.get_submodule(".".join(parts[:end])), classes) for end in range(len(parts), 0, -1))


def _site_output(root: nn.Module, branch: fx.Node) -> tuple[fx.Node, fx.Node, fx.Node]:
    """(consumer, output, producer) of a residual branch: the site sits between output and consumer,
    before the branch's dropout; the producer is the call the output comes from (past a `[0]`)."""
    consumer, output = None, branch
    if _is_dropout(root, branch) and isinstance(branch.args[0], fx.Node):
        consumer, output = branch, branch.args[0]
    producer = output
    if producer.op == "call_function" and producer.target is operator.getitem and producer.args[1] == 0:
        producer = producer.args[0]
    return consumer, output, producer


def find_sites(graph: fx.Graph, root: nn.Module, family: ModelFamily) -> dict[str, SiteMatch]:
    """Every site `graph` (traced from `root`) offers, by name.

    Raises TraceError when a site name would match two places (the recipe would be ambiguous).
    """
    flow = to_networkx(graph)
    nodes = {node.name: node for node in graph.nodes}
    encoder_states = [n.name for n in graph.nodes if n.op == "placeholder" and n.target == family.encoder_states_argument]
    found: dict[str, SiteMatch] = {}
    for add in graph.nodes:
        if not _is_residual_add(add):
            continue
        for branch, stream in ((add.args[0], add.args[1]), (add.args[1], add.args[0])):
            upstream_of_stream = nx.ancestors(flow, stream.name) | {stream.name}
            computed = [nodes[n] for n in nx.ancestors(flow, branch.name) | {branch.name} if n not in upstream_of_stream]
            attentions = [n for n in computed if _is_of(root, n, family.attention_classes)]
            if attentions:
                reads_encoder = any(nx.has_path(flow, source, a.name) for source in encoder_states for a in attentions)
                name = AFTER_CROSS_ATTENTION if reads_encoder else AFTER_SELF_ATTENTION
            elif any(_is_of(root, n, family.feed_forward_classes) for n in computed):
                name = AFTER_FFN
            else:
                continue
            consumer, output, producer = _site_output(root, branch)
            if name in found:
                raise TraceError(f"site {name!r} matches two sublayers ({found[name].sublayer}, {producer.target}); cannot choose one")
            found[name] = SiteMatch(name, output, consumer or add, str(producer.target))
    return found
