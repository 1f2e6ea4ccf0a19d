"""What the engine needs to know about a model family, and nothing about methods.

Adding a family means one `ModelFamily` entry: its block class, the modules the tracer keeps
opaque (leaves), which leaves are attention and feed-forward sublayers, and its layer norms.
Sites are then found from the traced dataflow, never from attribute names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn
from transformers.models.t5 import modeling_t5

from .errors import SurgeryError


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
    """One encoder-decoder family: how to find its blocks and which modules tracing keeps whole."""

    name: str
    model_classes: tuple[type[nn.Module], ...]
    block_class: type[nn.Module]
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

    def blocks(self, model: nn.Module) -> dict[str, list[nn.Module]]:
        """The blocks of each stack, in order: {"encoder": [...], "decoder": [...]}."""
        return {stack: list(getattr(model, stack).block) for stack in self.stacks if hasattr(model, stack)}

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


T5_FAMILY = ModelFamily(
    name="t5",
    model_classes=(modeling_t5.T5PreTrainedModel,),
    block_class=modeling_t5.T5Block,
    attention_classes=(modeling_t5.T5Attention,),
    feed_forward_classes=(modeling_t5.T5DenseActDense, modeling_t5.T5DenseGatedActDense),
    layer_norm_classes=(modeling_t5.T5LayerNorm,),
    decoder_only_arguments=("encoder_hidden_states", "encoder_attention_mask", "encoder_decoder_position_bias"),
)

FAMILIES: list[ModelFamily] = [T5_FAMILY]


def detect_family(model: nn.Module) -> ModelFamily:
    """The registered family `model` belongs to (first match wins), or a clear error."""
    for family in FAMILIES:
        if isinstance(model, family.model_classes):
            return family
    known = ", ".join(cls.__name__ for family in FAMILIES for cls in family.model_classes)
    raise SurgeryError(
        f"model of class {type(model).__name__} belongs to no registered family; supported: {known} "
        "(register a surgery.family.ModelFamily to add one)"
    )
