"""Trace one transformer block into a torch.fx graph.

The call tree::

    trace_block(block, family, dtype)
      └─ BlockTracer.trace(block)            # on a shim class whose forward has no **kwargs
           ├─ is_leaf_module   → attention, feed-forward, layer norm stay opaque calls
           ├─ proxy            → DtypeAnsweringProxy: `.dtype` is the real dtype, so T5's
           │                     fp16 clamp branch is decided (and recorded) at trace time
           └─ call_module      → around an inlined module, nodes that fire its forward pre-hooks
                                 and forward hooks, so hooks registered on sublayers (e.g.
                                 transformers' attention recorders) keep working

Two torch.fx limits on transformers 5 shape this file: `symbolic_trace` cannot patch a
`forward(**kwargs)` (so we trace a shim with an explicit signature), and Python branches on
`tensor.dtype` need a concrete answer.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from .errors import TraceError
from .family import ModelFamily


class DtypeAnsweringProxy(fx.Proxy):
    """A proxy that answers `.dtype` with the dtype the block is traced for."""

    def __getattr__(self, name: str) -> Any:
        if name == "dtype":
            return self.tracer.traced_dtype  # type: ignore[attr-defined]
        return super().__getattr__(name)


def run_forward_pre_hooks(module: nn.Module, args: tuple, kwargs: dict) -> None:
    """Fire the forward pre-hooks of a module whose body was inlined into a traced graph.

    Hooks that observe work as in eager mode. A hook that returns replacement inputs can not
    change a graph that was traced without it, so that is refused with the module's name.
    """
    if not module._forward_pre_hooks:
        return
    for hook_id, hook in list(module._forward_pre_hooks.items()):
        if hook_id in module._forward_pre_hooks_with_kwargs:
            result = hook(module, args, kwargs)
        else:
            result = hook(module, args)
        if result is not None:
            raise RuntimeError(
                f"a forward pre-hook on {type(module).__name__} returned new inputs, but surgery inlined this "
                "module into its block's traced graph, where inputs can not be replaced; register the hook on "
                "the block or on one of its attention / feed-forward / layer-norm modules instead"
            )


def run_forward_hooks(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
    """Fire the forward hooks of a module whose body was inlined into a traced graph.

    transformers records attentions with hooks on sublayers (e.g. `T5LayerSelfAttention`);
    tracing inlines those sublayers, so the graph calls this where the module's call ended.
    """
    if not module._forward_hooks:
        return
    for hook_id, hook in list(module._forward_hooks.items()):
        if hook_id in module._forward_hooks_with_kwargs:
            hook(module, args, kwargs, output)
        else:
            hook(module, args, output)



class BlockTracer(fx.Tracer):
    """Traces a block, keeping the family's sublayers whole and answering `.dtype`."""

    def __init__(self, family: ModelFamily, dtype: torch.dtype):
        super().__init__()
        self.family = family
        self.traced_dtype = dtype

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return isinstance(module, self.family.leaf_classes) or super().is_leaf_module(module, qualified_name)

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return DtypeAnsweringProxy(node, self)

    def call_module(self, module: nn.Module, forward: Any, args: tuple, kwargs: dict) -> Any:
        qualified_name = self.path_of_module(module)
        if self.is_leaf_module(module, qualified_name):
            return super().call_module(module, forward, args, kwargs)
        owner = self.create_proxy("get_attr", qualified_name, (), {})
        self.create_proxy("call_function", run_forward_pre_hooks, (owner, args, kwargs), {})
        output = super().call_module(module, forward, args, kwargs)
        self.create_proxy("call_function", run_forward_hooks, (owner, args, kwargs, output), {})
        return output


_SHIM_CLASSES: dict[type, type] = {}


def _shim_class(block_class: type[nn.Module]) -> type[nn.Module]:
    """A subclass of `block_class` whose forward lists its arguments explicitly (no **kwargs).

    torch.fx cannot trace a `forward(..., **kwargs)` on Python 3.11; the shim forwards every
    named argument to the real forward and drops the keyword catch-all, which only carries
    options that the kept-whole sublayers do not need when traced (attention kernels' extras).
    """
    if block_class not in _SHIM_CLASSES:
        forward = block_class.forward
        params = [
            p for p in inspect.signature(forward).parameters.values()
            if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        ]
        header = ", ".join(p.name if p.default is inspect.Parameter.empty else f"{p.name}=_defaults[{p.name!r}]" for p in params)
        call = ", ".join(p.name for p in params)
        namespace = {"_real_forward": forward, "_defaults": {p.name: p.default for p in params}}
        exec(f"def forward({header}):\n    return _real_forward({call})\n", namespace)  # noqa: S102
        _SHIM_CLASSES[block_class] = type(f"Traceable{block_class.__name__}", (block_class,), {"forward": namespace["forward"]})
    return _SHIM_CLASSES[block_class]


def trace_block(block: nn.Module, family: ModelFamily, dtype: torch.dtype, where: str = "block") -> fx.Graph:
    """Trace `block` (an instance of `family.block_class`) into a graph; the block is not changed.

    Args:
        block: the block to trace.
        family: tells which modules stay whole and which arguments only decoders receive.
        dtype: the dtype of the hidden states the graph will run on (T5 branches on it).
        where: the block's qualified name, used in error messages.

    Returns:
        The fx graph; its placeholders are the block's named forward arguments.

    >>> from transformers import T5Config, T5ForConditionalGeneration
    >>> from surgery.families import T5_FAMILY
    >>> model = T5ForConditionalGeneration(T5Config(d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2, vocab_size=32))
    >>> graph = trace_block(model.encoder.block[0], T5_FAMILY, torch.float32)
    >>> sum(node.op == "call_module" for node in graph.nodes) > 0
    True
    """
    original_class = type(block)
    base_class = family.block_class
    if not isinstance(block, base_class):
        raise TraceError(f"{where}: expected a {base_class.__name__}, got {original_class.__name__}")
    concrete_args = {}
    if not family.is_decoder_block(block):
        concrete_args = {name: None for name in family.decoder_only_arguments}
    tracer = BlockTracer(family, dtype)
    block.__class__ = _shim_class(base_class)
    try:
        graph = tracer.trace(block, concrete_args=concrete_args)
    except Exception as error:  # any tracing failure becomes one clear message
        raise TraceError(
            f"{where} ({base_class.__name__}) cannot be traced with torch.fx: {type(error).__name__}: {error}. "
            f"Modules kept whole: {', '.join(c.__name__ for c in family.leaf_classes)}; "
            "add the offending submodule's class to the family's leaves if its forward is data-dependent."
        ) from error
    finally:
        block.__class__ = original_class
    return graph
