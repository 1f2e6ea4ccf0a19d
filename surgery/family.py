"""What the engine needs to know about a model family, and nothing about methods.

Adding a family means one `ModelFamily` entry: its block and stack classes, the modules the
tracer keeps opaque (leaves), which leaves are attention and feed-forward sublayers, and its
layer norms. Sites are then found from the traced dataflow, never from attribute names, and
stacks are found by class wherever they sit (``model.encoder`` in T5ForConditionalGeneration,
``model.transformer.encoder`` in T5ForSequenceClassification). The registered families are in
`surgery.families`: T5 (v1.0, v1.1 / Flan-T5), mT5, UMT5 and LongT5, every model class of each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .errors import SurgeryError

# Attributes that hold a task head in the Hugging Face T5 classes (the `head` train group).
HEAD_ATTRIBUTES = ("lm_head", "classification_head", "classifier", "qa_outputs")


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
class ModelFamily:
    """One encoder-decoder family: how to find its stacks and blocks, which modules tracing keeps whole."""

    name: str
    model_classes: tuple[type[nn.Module], ...]
    block_class: type[nn.Module]
    stack_class: type[nn.Module]
    attention_classes: tuple[type[nn.Module], ...]
    feed_forward_classes: tuple[type[nn.Module], ...]
    layer_norm_classes: tuple[type[nn.Module], ...]
    stacks: tuple[str, ...] = ("encoder", "decoder")
    # Block forward arguments that only a decoder block receives; encoder blocks are traced
    # with these fixed to None so the cross-attention branch is not traced.
    decoder_only_arguments: tuple[str, ...] = ()
    # The placeholder whose dataflow marks a cross-attention (its keys/values come from it).
    encoder_states_argument: str = "encoder_hidden_states"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def leaf_classes(self) -> tuple[type[nn.Module], ...]:
        return self.attention_classes + self.feed_forward_classes + self.layer_norm_classes

    def stack_paths(self, model: nn.Module) -> dict[str, str]:
        """Qualified name of each stack the model has: {"encoder": "transformer.encoder", ...}.

        A stack is a module of the family's stack class; its `is_decoder` flag names it.
        """
        found: dict[str, str] = {}
        for name, module in model.named_modules():
            if isinstance(module, self.stack_class):
                stack = "decoder" if getattr(module, "is_decoder", False) else "encoder"
                if stack in found:
                    raise SurgeryError(f"{type(model).__name__} holds two {stack} stacks ({found[stack]!r}, {name!r}); "
                                       "surgery expects one encoder and at most one decoder")
                found[stack] = name
        return {stack: found[stack] for stack in self.stacks if stack in found}

    def blocks(self, model: nn.Module) -> dict[str, list[nn.Module]]:
        """The blocks of each stack the model has, in order: {"encoder": [...], "decoder": [...]}."""
        return {stack: list(model.get_submodule(path).block) for stack, path in self.stack_paths(model).items()}

    def block_paths(self, model: nn.Module) -> dict[str, str]:
        """Prefix of each stack's block names: {"encoder": "encoder.block", ...}."""
        return {stack: f"{path}.block" if path else "block" for stack, path in self.stack_paths(model).items()}

    def dims(self, model: nn.Module) -> ModelDims:
        config = model.config
        depths = {stack: len(blocks) for stack, blocks in self.blocks(model).items()}
        return ModelDims(
            hidden_size=config.d_model,
            ffn_size=config.d_ff,
            num_heads=config.num_heads,
            vocab_size=config.vocab_size,
            stack_depths=depths,
            tie_word_embeddings=bool(getattr(config, "tie_word_embeddings", True)),
            max_positions=getattr(config, "n_positions", None),
        )

    def is_decoder_block(self, block: nn.Module) -> bool:
        return bool(getattr(block, "is_decoder", False))


def task_head_modules(model: nn.Module) -> dict[str, nn.Module]:
    """The model's task head(s) by attribute name: the LM head, a classification, token or QA head."""
    heads = {}
    for attribute in HEAD_ATTRIBUTES:
        module = getattr(model, attribute, None)
        if isinstance(module, nn.Module):
            heads[attribute] = module
    return heads
