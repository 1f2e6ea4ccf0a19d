"""The registered families: T5 (v1.0, v1.1 / Flan-T5), mT5, UMT5 and LongT5, every model class of each.

Each family names its classes; everything else (stacks, blocks, sites) is found from them:

========  ==============================================  =========================================
family    model classes (transformers 5)                  what differs for the engine
========  ==============================================  =========================================
t5        T5ForConditionalGeneration, T5Model,            the reference layout; v1.1 / Flan-T5 have
          T5EncoderModel, T5ForSequenceClassification,    a gated FFN (T5DenseGatedActDense)
          T5ForTokenClassification, T5ForQuestionAnswering
mt5       the same six, MT5*                              own copies of T5's classes
umt5      the same six, UMT5*                             a relative-attention bias in every layer:
                                                          blocks receive no position bias
longt5    LongT5ForConditionalGeneration, LongT5Model,    encoder self-attention is local or
          LongT5EncoderModel                              transient-global (their own classes)
========  ==============================================  =========================================

A model is matched by its family's pre-trained base class, so subclasses are covered too.

>>> [family.name for family in FAMILIES]
['t5', 'mt5', 'umt5', 'longt5']
"""

from __future__ import annotations

from transformers.models.longt5 import modeling_longt5 as longt5
from transformers.models.mt5 import modeling_mt5 as mt5
from transformers.models.t5 import modeling_t5 as t5
from transformers.models.umt5 import modeling_umt5 as umt5

from torch import nn

from .errors import SurgeryError
from .family import ModelFamily

# Arguments of a T5-style block that carry the decoder's cross-attention inputs.
_CROSS_ATTENTION_ARGUMENTS = ("encoder_hidden_states", "encoder_attention_mask", "encoder_decoder_position_bias")

T5_FAMILY = ModelFamily(
    name="t5",
    model_classes=(t5.T5PreTrainedModel,),
    block_class=t5.T5Block,
    stack_class=t5.T5Stack,
    attention_classes=(t5.T5Attention,),
    feed_forward_classes=(t5.T5DenseActDense, t5.T5DenseGatedActDense),
    layer_norm_classes=(t5.T5LayerNorm,),
    decoder_only_arguments=_CROSS_ATTENTION_ARGUMENTS,
)

MT5_FAMILY = ModelFamily(
    name="mt5",
    model_classes=(mt5.MT5PreTrainedModel,),
    block_class=mt5.MT5Block,
    stack_class=mt5.MT5Stack,
    attention_classes=(mt5.MT5Attention,),
    feed_forward_classes=(mt5.MT5DenseActDense, mt5.MT5DenseGatedActDense),
    layer_norm_classes=(mt5.MT5LayerNorm,),
    decoder_only_arguments=_CROSS_ATTENTION_ARGUMENTS,
)

# UMT5 computes a relative-attention bias inside every attention (no bias is passed between blocks).
UMT5_FAMILY = ModelFamily(
    name="umt5",
    model_classes=(umt5.UMT5PreTrainedModel,),
    block_class=umt5.UMT5Block,
    stack_class=umt5.UMT5Stack,
    attention_classes=(umt5.UMT5Attention,),
    feed_forward_classes=(umt5.UMT5DenseActDense, umt5.UMT5DenseGatedActDense),
    layer_norm_classes=(umt5.UMT5LayerNorm,),
    decoder_only_arguments=("encoder_hidden_states", "encoder_attention_mask"),
)

# LongT5's encoder attends locally or transient-globally; both are attention leaves, so their
# output is found as `after_self_attention` by dataflow like any other self-attention.
LONGT5_FAMILY = ModelFamily(
    name="longt5",
    model_classes=(longt5.LongT5PreTrainedModel,),
    block_class=longt5.LongT5Block,
    stack_class=longt5.LongT5Stack,
    attention_classes=(longt5.LongT5Attention, longt5.LongT5LocalAttention, longt5.LongT5TransientGlobalAttention),
    feed_forward_classes=(longt5.LongT5DenseActDense, longt5.LongT5DenseGatedActDense),
    layer_norm_classes=(longt5.LongT5LayerNorm,),
    decoder_only_arguments=_CROSS_ATTENTION_ARGUMENTS,
)

FAMILIES: list[ModelFamily] = [T5_FAMILY, MT5_FAMILY, UMT5_FAMILY, LONGT5_FAMILY]


def detect_family(model: nn.Module) -> ModelFamily:
    """The registered family `model` belongs to (first match wins), or a clear error.

    >>> from transformers import MT5Config, MT5EncoderModel
    >>> detect_family(MT5EncoderModel(MT5Config(d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2, vocab_size=32))).name
    'mt5'
    """
    for family in FAMILIES:
        if isinstance(model, family.model_classes):
            return family
    known = ", ".join(cls.__name__ for family in FAMILIES for cls in family.model_classes)
    raise SurgeryError(
        f"model of class {type(model).__name__} belongs to no registered family; supported: {known} and their "
        "subclasses (append a surgery.family.ModelFamily to surgery.families.FAMILIES to add one)"
    )
