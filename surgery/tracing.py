"""Trace one transformer block into a torch.fx graph.

The call tree::

    trace_block(block, family, dtype)
      └─ BlockTracer.trace(block)            # on a shim class with a plain signature
           ├─ is_leaf_module   → attention, feed-forward, layer norm stay opaque calls
           ├─ proxy            → DtypeAnsweringProxy: `.dtype` is the real dtype, so T5's
           │                     fp16 clamp branch is decided (and recorded) at trace time;
           │                     PassedKeywords for the block's `**kwargs`
           ├─ `module.training` → a node that reads the flag when the graph runs, for the block
           │                     and every module inlined into it
           └─ call_module      → around an inlined module, nodes that fire its forward pre-hooks
                                 and forward hooks, so hooks registered on sublayers (e.g.
                                 transformers' attention recorders) keep working
    pass_keywords_through(graph)             # after sites are found: calls that received the
                                             # block's `**kwargs` receive them when the graph runs

What a graph decides when it is traced: the dtype (the engine re-traces when it changes), the
block's structure and which optional arguments are None. What it reads when it runs: every
tensor, every keyword argument the block receives (passed on wherever the block's own code
passes its `**kwargs`, e.g. attention-kernel extras such as `cu_seq_lens_q`), and the
`training` flag of every module. Code that branches in Python on a keyword's value or on
`self.training` can not be traced; the error names the block (make that module a leaf).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
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


# While tracing, `**kwargs` of the block unpacks to {KEYWORDS: <the placeholder>}: a dict that the
# block's code passes on like any other; `pass_keywords_through` turns it back into `**kwargs`.
KEYWORDS = "<keyword arguments the block received>"


class PassedKeywords(DtypeAnsweringProxy):
    """The placeholder of the block's `**kwargs`: unpacking it gives one marked entry.

    >>> tracer = fx.Tracer(); tracer.graph = fx.Graph()
    >>> keywords = PassedKeywords(tracer.graph.placeholder("**kwargs"), tracer)
    >>> dict(**keywords) == {KEYWORDS: keywords}
    True
    """

    def keys(self) -> tuple[str, ...]:
        return (KEYWORDS,)

    def __getitem__(self, key: Any) -> Any:
        return self if key == KEYWORDS else super().__getitem__(key)


def call_module_with_keywords(module: nn.Module, args: tuple, named: dict, keywords: dict) -> Any:
    """`module(*args, **named, **keywords)`: a module call that receives the block's `**kwargs`."""
    return module(*args, **named, **keywords)


def call_method_with_keywords(owner: Any, method: str, args: tuple, named: dict, keywords: dict) -> Any:
    """`owner.method(*args, **named, **keywords)`."""
    return getattr(owner, method)(*args, **named, **keywords)


def merge_keywords(named: dict, keywords: dict) -> dict:
    """`{**named, **keywords}`, refusing a key given twice as a Python call would."""
    repeated = named.keys() & keywords.keys()
    if repeated:
        raise TypeError(f"got multiple values for keyword argument {sorted(repeated)[0]!r}")
    return {**named, **keywords}


def function_with_keywords(function: Any) -> Any:
    """`function` as a callable `(args, named, keywords)` that fx can name in generated code."""

    def call(args: tuple, named: dict, keywords: dict) -> Any:
        return function(*args, **named, **keywords)

    call.__name__ = call.__qualname__ = f"{getattr(function, '__name__', 'function')}_with_keywords"
    return call


def _without_marker(graph: fx.Graph, value: Any) -> Any:
    """`value` (a node argument) with every dict that holds KEYWORDS replaced by a merge node."""
    if isinstance(value, dict):
        named = {key: _without_marker(graph, item) for key, item in value.items() if key != KEYWORDS}
        return graph.call_function(merge_keywords, (named, value[KEYWORDS])) if KEYWORDS in value else named
    if isinstance(value, (tuple, list)):
        return type(value)(_without_marker(graph, item) for item in value)
    return value


def pass_keywords_through(graph: fx.Graph) -> None:
    """Rewrite, in place, every call that received the block's `**kwargs` so that it receives them.

    A call that got them as its own keywords becomes `call_*_with_keywords(..., named, kwargs)`;
    a dict built with them (e.g. the inputs given to forward hooks) becomes `merge_keywords`.
    Run it after `surgery.sites.find_sites`, which reads module calls as `call_module` nodes.
    """
    for node in list(graph.nodes):
        with graph.inserting_before(node):
            args = _without_marker(graph, node.args)
            named = {key: _without_marker(graph, value) for key, value in node.kwargs.items() if key != KEYWORDS}
            if KEYWORDS not in node.kwargs:
                node.args, node.kwargs = args, named
                continue
            keywords = node.kwargs[KEYWORDS]
            if node.op == "call_module":
                call = graph.call_function(call_module_with_keywords, (graph.get_attr(node.target), args, named, keywords))
            elif node.op == "call_method":
                call = graph.call_function(call_method_with_keywords, (args[0], node.target, args[1:], named, keywords))
            else:
                call = graph.call_function(function_with_keywords(node.target), (args, named, keywords))
        node.replace_all_uses_with(call)
        graph.erase_node(node)


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
        self.training_flags: list[fx.Node] = []

    def trace(self, root: nn.Module, concrete_args: dict[str, Any] | None = None) -> fx.Graph:
        with self.training_read_at_run_time(root, ""):
            graph = super().trace(root, concrete_args)
        for flag in self.training_flags:
            if not flag.users:
                graph.erase_node(flag)  # keeps the generated code free of reads nobody uses
        return graph

    @contextmanager
    def training_read_at_run_time(self, module: nn.Module, qualified_name: str) -> Iterator[None]:
        """While `module`'s own code is traced, `module.training` is a node reading the flag at run time.

        For the root, the node can only be made once the graph exists (see `create_args_for_root`).
        """
        saved = module.training
        try:
            if qualified_name:
                module.training = self.training_flag(qualified_name)
            yield
        finally:
            module.training = saved

    def training_flag(self, qualified_name: str) -> fx.Proxy:
        target = f"{qualified_name}.training" if qualified_name else "training"
        flag = self.create_proxy("get_attr", target, (), {})
        self.training_flags.append(flag.node)
        return flag

    def create_args_for_root(self, root_fn: Any, is_module: bool, concrete_args: Any = None) -> tuple[Any, list]:
        fn, args = super().create_args_for_root(root_fn, is_module, concrete_args)
        if is_module:
            self.root.training = self.training_flag("")  # restored by `training_read_at_run_time`
        return fn, args

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return isinstance(module, self.family.leaf_classes) or super().is_leaf_module(module, qualified_name)

    def proxy(self, node: fx.Node) -> fx.Proxy:
        if node.op == "placeholder" and str(node.target).startswith("**"):
            return PassedKeywords(node, self)
        return DtypeAnsweringProxy(node, self)

    def call_module(self, module: nn.Module, forward: Any, args: tuple, kwargs: dict) -> Any:
        qualified_name = self.path_of_module(module)
        if self.is_leaf_module(module, qualified_name):
            return super().call_module(module, forward, args, kwargs)
        owner = self.create_proxy("get_attr", qualified_name, (), {})
        self.create_proxy("call_function", run_forward_pre_hooks, (owner, args, kwargs), {})
        with self.training_read_at_run_time(module, qualified_name):
            output = super().call_module(module, forward, args, kwargs)
        self.create_proxy("call_function", run_forward_hooks, (owner, args, kwargs, output), {})
        return output


_SHIM_CLASSES: dict[type, type] = {}


def _shim_class(block_class: type[nn.Module]) -> type[nn.Module]:
    """A subclass of `block_class` whose forward is a plain function of the same arguments.

    torch.fx reads the signature off the forward's code object, and transformers wraps block
    forwards in decorators whose code says `(*args, **kwargs)`; the shim lists the named
    arguments and the keyword catch-all explicitly and calls the real forward with them.

    >>> from surgery.family_registry import T5_FAMILY
    >>> str(inspect.signature(_shim_class(T5_FAMILY.block_class).forward)).endswith("cache=None, **kwargs)")
    True
    """
    if block_class not in _SHIM_CLASSES:
        forward = block_class.forward
        signature = inspect.signature(forward).parameters.values()
        params = [p for p in signature if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
        catch_all = [f"**{p.name}" for p in signature if p.kind is inspect.Parameter.VAR_KEYWORD]
        header = ", ".join([p.name if p.default is inspect.Parameter.empty else f"{p.name}=_defaults[{p.name!r}]"
                            for p in params] + catch_all)
        call = ", ".join([p.name for p in params] + catch_all)
        namespace = {"_real_forward": forward, "_defaults": {p.name: p.default for p in params}}
        exec(f"def forward({header}):\n    return _real_forward({call})\n", namespace)  # noqa: S102
        shim = type(f"Traceable{block_class.__name__}", (block_class,), {})
        # Set after the class is made: transformers' `__init_subclass__` wraps a subclass's forward
        # in a gradient-checkpointing dispatcher, which is run-time behaviour, not the block's graph.
        shim.forward = namespace["forward"]
        _SHIM_CLASSES[block_class] = shim
    return _SHIM_CLASSES[block_class]


def trace_block(block: nn.Module, family: ModelFamily, dtype: torch.dtype, where: str = "block") -> fx.Graph:
    """Trace `block` (an instance of one of `family.block_classes`) into a graph; the block is not changed.

    Args:
        block: the block to trace.
        family: tells which modules stay whole and which arguments only decoders receive.
        dtype: the dtype of the hidden states the graph will run on (T5 branches on it); one the
            family cannot be traced in (`ModelFamily.traceable_dtypes`) is refused with a TraceError.
        where: the block's qualified name, used in error messages.

    Returns:
        The fx graph; its placeholders are the block's named forward arguments.

    >>> from transformers import T5Config, T5ForConditionalGeneration
    >>> from surgery.family_registry import T5_FAMILY
    >>> model = T5ForConditionalGeneration(T5Config(d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2, vocab_size=32))
    >>> graph = trace_block(model.encoder.block[0], T5_FAMILY, torch.float32)
    >>> sum(node.op == "call_module" for node in graph.nodes) > 0
    True
    """
    original_class = type(block)
    if not isinstance(block, family.block_classes):
        raise TraceError(f"{where}: expected a {' or '.join(c.__name__ for c in family.block_classes)}, got {original_class.__name__}")
    base_class = family.declared_block_class(block)
    family.check_traceable_dtype(dtype, where)
    concrete_args = {}
    if not family.is_decoder_block(block):
        accepted = inspect.signature(base_class.forward).parameters
        concrete_args = {name: None for name in family.decoder_only_arguments if name in accepted}
    tracer = BlockTracer(family, dtype)
    block.__class__ = _shim_class(base_class)
    # Activation checkpointing wraps the block's call (transformers' GradientCheckpointingLayer), not
    # its forward: the graph is the forward alone, as when the block is traced before checkpointing is
    # switched on. Switched off while tracing, since a retrace (after deepcopy, pickling or a dtype
    # change) may come when it is on, and its check would meet traced values.
    checkpointing = block.__dict__.get("gradient_checkpointing")
    if checkpointing:
        block.gradient_checkpointing = False
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
        if checkpointing:
            block.gradient_checkpointing = checkpointing
    return graph
