"""What the engine needs to know about a model family, and nothing about methods.

Adding a family means one `ModelFamily` entry: its block classes, where its stacks and their
blocks sit, the modules the tracer keeps opaque (leaves), which modules are attention and
feed-forward sublayers, and its layer norms. Sites are then found from the traced dataflow, never
from attribute names, and stacks are found by class wherever they sit (``model.encoder`` in
T5ForConditionalGeneration, ``model.transformer.encoder`` in T5ForSequenceClassification,
``model.model`` in LlamaForCausalLM). The registered families are in `surgery.family_registry`.

To declare another family, name its classes and append it to `surgery.family_registry.FAMILIES`; here a
Llama-like model (any transformers class works the same way):

>>> from transformers.models.llama import modeling_llama as llama
>>> family = ModelFamily(
...     name="my-llama",
...     model_classes=(llama.LlamaPreTrainedModel,),
...     block_classes=(llama.LlamaDecoderLayer,),
...     stack_declarations=(Stack(llama.LlamaModel, blocks="layers", name="decoder"),),
...     attention_classes=(llama.LlamaAttention,),
...     feed_forward_classes=(llama.LlamaMLP,),
...     layer_norm_classes=(llama.LlamaRMSNorm,),
...     ffn_size_attribute="intermediate_size",
...     max_positions_attribute="max_position_embeddings",
... )
>>> from transformers import LlamaConfig, LlamaForCausalLM
>>> model = LlamaForCausalLM(LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2,
...                                      num_attention_heads=2, num_key_value_heads=1, vocab_size=64))
>>> family.block_paths(model), family.dims(model).stack_depths
({'decoder': 'model.layers'}, {'decoder': 2})
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .errors import SurgeryError, TraceError

# Attributes that hold a task head in the Hugging Face classes (the `head` train group): T5's and
# BART's heads, Llama's / GPT-2's / Qwen2's / Mistral's `score`, BERT's `classifier` and `cls`.
HEAD_ATTRIBUTES = ("lm_head", "classification_head", "classifier", "qa_outputs", "score", "cls")


@dataclass(frozen=True)
class ModelDims:
    """The sizes a method needs to build its modules (read off the model's config)."""

    hidden_size: int
    ffn_size: int
    num_heads: int
    vocab_size: int
    stack_depths: dict[str, int]
    tie_word_embeddings: bool
    max_positions: int | None = None


@dataclass(frozen=True)
class Stack:
    """Where a stack of blocks sits: a module of `module_class` whose attribute `blocks` lists its blocks.

    `name` is "encoder" or "decoder" (the names recipes select layers by); None names the stack by
    the module's `is_decoder` flag, for families whose encoder and decoder share one class (T5Stack).
    """

    module_class: type[nn.Module]
    blocks: str = "block"
    name: str | None = None

    def name_of(self, module: nn.Module) -> str:
        if self.name is not None:
            return self.name
        return "decoder" if getattr(module, "is_decoder", False) else "encoder"


def _default_ffn_size(config: Any, attribute: str) -> int:
    return int(getattr(config, attribute))


@dataclass(frozen=True)
class ModelFamily:
    """One family: how to find its stacks and blocks, which modules tracing keeps whole, and what differs.

    Fields a declaration gives:
        model_classes: the family's pre-trained base class(es); subclasses match too.
        block_classes: the block (layer) classes; each block is traced and spliced on its own.
        stack_declarations: where the stacks sit (see `Stack`).
        attention_classes / feed_forward_classes: a residual branch holding one of these is an
            attention / feed-forward site (an attention with the encoder's states upstream is a
            cross-attention). They are kept whole by the tracer unless listed in `traced_through`.
        layer_norm_classes: the `layer_norms` train group; kept whole.
        traced_through: sublayer classes whose code the tracer follows, so that a site can sit
            inside them before their dropout and residual add (BERT's attention and output layers).
        extra_leaf_classes: more modules to keep whole (e.g. BERT's inner self-attention).
        decoder_only_arguments: block arguments only a decoder block receives (fixed to None when
            an encoder block is traced, so its cross-attention branch is not traced).
        encoder_states_argument: the block argument whose dataflow marks a cross-attention.
        ffn_size_attribute / ffn_size: the config field with the FFN width, or a function of the config.
        max_positions_attribute: the config field with the position-table size (None: no table).
        traceable_dtypes: dtypes the blocks can be traced in (None: any); others are refused.
        placement: how the family's sites differ from the paper's (T5: none), for people reading a plan.
        refused_classes: (model class, reason) pairs the family matches but surgery does not support.
        norm_readers: for a block's layer norm without a bias of its own (RMSNorm), its attribute name
            in the block → the block-relative paths of the linear layers that read its output, where
            folding BitFit moves the norm's bias (T5's are found from its one-sublayer containers).
    """

    name: str
    model_classes: tuple[type[nn.Module], ...]
    block_classes: tuple[type[nn.Module], ...]
    stack_declarations: tuple[Stack, ...]
    attention_classes: tuple[type[nn.Module], ...]
    feed_forward_classes: tuple[type[nn.Module], ...]
    layer_norm_classes: tuple[type[nn.Module], ...]
    traced_through: tuple[type[nn.Module], ...] = ()
    extra_leaf_classes: tuple[type[nn.Module], ...] = ()
    decoder_only_arguments: tuple[str, ...] = ()
    encoder_states_argument: str = "encoder_hidden_states"
    ffn_size_attribute: str = "d_ff"
    ffn_size: Callable[[Any], int] | None = None
    max_positions_attribute: str | None = "n_positions"
    traceable_dtypes: tuple[torch.dtype, ...] | None = None
    placement: str = "as in the paper: on each sublayer's output, before its dropout and residual add"
    refused_classes: tuple[tuple[type[nn.Module], str], ...] = ()
    norm_readers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def block_class(self) -> type[nn.Module]:
        """The first block class (families with one block class: the block class)."""
        return self.block_classes[0]

    @property
    def stacks(self) -> tuple[str, ...]:
        """The stack names this family's models can have, encoder first."""
        names = {"encoder", "decoder"} if any(s.name is None for s in self.stack_declarations) else \
            {s.name for s in self.stack_declarations}
        return tuple(n for n in ("encoder", "decoder") if n in names)

    @property
    def leaf_classes(self) -> tuple[type[nn.Module], ...]:
        sublayers = self.attention_classes + self.feed_forward_classes + self.layer_norm_classes
        return tuple(c for c in sublayers if c not in self.traced_through) + self.extra_leaf_classes

    def declared_block_class(self, block: nn.Module) -> type[nn.Module]:
        """The declared block class `block` is an instance of (spliced blocks keep it in their MRO)."""
        for block_class in self.block_classes:
            if isinstance(block, block_class):
                return block_class
        raise SurgeryError(f"{type(block).__name__} is not a block of family {self.name!r} "
                           f"({', '.join(c.__name__ for c in self.block_classes)})")

    def _stack_modules(self, model: nn.Module) -> dict[str, tuple[str, nn.Module, Stack]]:
        found: dict[str, tuple[str, nn.Module, Stack]] = {}
        for name, module in model.named_modules():
            for declaration in self.stack_declarations:
                if isinstance(module, declaration.module_class) and isinstance(getattr(module, declaration.blocks, None), nn.ModuleList):
                    stack = declaration.name_of(module)
                    if stack in found:
                        raise SurgeryError(f"{type(model).__name__} holds two {stack} stacks ({found[stack][0]!r}, {name!r}); "
                                           "surgery expects at most one encoder and one decoder")
                    found[stack] = (name, module, declaration)
                    break
        return {stack: found[stack] for stack in ("encoder", "decoder") if stack in found}

    def stack_paths(self, model: nn.Module) -> dict[str, str]:
        """Qualified name of each stack the model has: {"encoder": "transformer.encoder", ...}."""
        return {stack: path for stack, (path, _, _) in self._stack_modules(model).items()}

    def blocks(self, model: nn.Module) -> dict[str, list[nn.Module]]:
        """The blocks of each stack the model has, in order: {"encoder": [...], "decoder": [...]}."""
        return {stack: list(getattr(module, d.blocks)) for stack, (_, module, d) in self._stack_modules(model).items()}

    def block_paths(self, model: nn.Module) -> dict[str, str]:
        """Prefix of each stack's block names: {"encoder": "encoder.block", ...}."""
        return {stack: f"{path}.{d.blocks}" if path else d.blocks for stack, (path, _, d) in self._stack_modules(model).items()}

    def dims(self, model: nn.Module) -> ModelDims:
        config = model.config
        depths = {stack: len(blocks) for stack, blocks in self.blocks(model).items()}
        ffn = self.ffn_size(config) if self.ffn_size is not None else _default_ffn_size(config, self.ffn_size_attribute)
        positions = getattr(config, self.max_positions_attribute, None) if self.max_positions_attribute else None
        return ModelDims(
            hidden_size=config.hidden_size,
            ffn_size=ffn,
            num_heads=config.num_attention_heads,
            vocab_size=config.vocab_size,
            stack_depths=depths,
            tie_word_embeddings=bool(getattr(config, "tie_word_embeddings", True)),
            max_positions=positions,
        )

    def is_decoder_block(self, block: nn.Module) -> bool:
        """Whether `block` has a cross-attention, so its `decoder_only_arguments` are traced: a decoder
        block (`is_decoder`) that was not built without one (BERT's `add_cross_attention`)."""
        return bool(getattr(block, "is_decoder", False)) and bool(getattr(block, "add_cross_attention", True))

    def check_traceable_dtype(self, dtype: torch.dtype, where: str) -> None:
        """Refuse a dtype this family's blocks cannot be traced in, naming the dtypes that work."""
        if self.traceable_dtypes is not None and dtype not in self.traceable_dtypes:
            works = ", ".join(str(d).replace("torch.", "") for d in self.traceable_dtypes)
            raise TraceError(f"{where}: a {self.name} block cannot be traced in {str(dtype).replace('torch.', '')} "
                             f"(its code branches in Python on the values of the activations in that dtype); "
                             f"dtypes that work: {works}; convert the model with .to(dtype) first")


def task_head_modules(model: nn.Module) -> dict[str, nn.Module]:
    """The model's task head(s) by attribute name: the LM head, a classification, token or QA head."""
    heads = {}
    for attribute in HEAD_ATTRIBUTES:
        module = getattr(model, attribute, None)
        if isinstance(module, nn.Module):
            heads[attribute] = module
    return heads
