"""The registered families, every model class of each (matched by the family's pre-trained base class,
so subclasses are covered too).

Each family names its classes; everything else (stacks, blocks, sites) is found from them:

========  ===========================================  ==============================================
family    model classes (transformers 5)               what differs for the engine
========  ===========================================  ==============================================
t5        T5ForConditionalGeneration, T5Model,         the reference layout; v1.1 / Flan-T5 have a
          T5EncoderModel, T5For{Sequence,Token}-       gated FFN (T5DenseGatedActDense)
          Classification, T5ForQuestionAnswering
mt5       the same six, MT5*                           own copies of T5's classes
umt5      the same six, UMT5*                          a relative-attention bias in every layer
longt5    LongT5ForConditionalGeneration,              encoder self-attention is local or
          LongT5Model, LongT5EncoderModel              transient-global (their own classes)
llama     LlamaForCausalLM, LlamaModel, LlamaFor-      decoder only (one stack, "decoder"), pre-norm,
          {Sequence,Token}Classification, ...QA        no dropout on the residual branch
qwen2     the same, Qwen2*                             as llama
mistral   the same, Mistral*                           as llama
gpt2      GPT2LMHeadModel, GPT2Model, GPT2For-         decoder only; the attention and the MLP apply
          {Sequence,Token}Classification, ...QA        their residual dropout inside: the site is
                                                       after it (declared in `placement`)
bart      BartForConditionalGeneration, BartModel,     encoder-decoder, post-norm, two block classes,
          BartForSequenceClassification, ...QA         functional dropout, the FFN is the block's
                                                       own fc1/fc2 (no module); traced in float32
                                                       or bfloat16 only (its fp16 clamp reads values)
mbart     the same, MBart*                             as bart, but pre-norm
bert      BertForMaskedLM, BertModel, BertFor-         encoder only (one stack, "encoder"),
          {Sequence,Token}Classification, ...QA        post-norm; the attention's and the FFN's
                                                       output layers are traced through, so the site
                                                       is on their dense output before dropout
roberta   the same, Roberta*                           as bert
========  ===========================================  ==============================================

Every site sits where the paper puts it (on the sublayer's output, before its dropout and the
residual add) except where a family's `placement` says otherwise.

>>> [family.name for family in FAMILIES]
['t5', 'mt5', 'umt5', 'longt5', 'llama', 'qwen2', 'mistral', 'gpt2', 'bart', 'mbart', 'bert', 'roberta']
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.models.bart import modeling_bart as bart
from transformers.models.bert import modeling_bert as bert
from transformers.models.gpt2 import modeling_gpt2 as gpt2
from transformers.models.llama import modeling_llama as llama
from transformers.models.longt5 import modeling_longt5 as longt5
from transformers.models.mbart import modeling_mbart as mbart
from transformers.models.mistral import modeling_mistral as mistral
from transformers.models.mt5 import modeling_mt5 as mt5
from transformers.models.qwen2 import modeling_qwen2 as qwen2
from transformers.models.roberta import modeling_roberta as roberta
from transformers.models.t5 import modeling_t5 as t5
from transformers.models.umt5 import modeling_umt5 as umt5

from .errors import SurgeryError
from .family import ModelFamily, Stack

# Arguments of a T5-style block that carry the decoder's cross-attention inputs.
_CROSS_ATTENTION_ARGUMENTS = ("encoder_hidden_states", "encoder_attention_mask", "encoder_decoder_position_bias")

T5_FAMILY = ModelFamily(
    name="t5",
    model_classes=(t5.T5PreTrainedModel,),
    block_classes=(t5.T5Block,),
    stack_declarations=(Stack(t5.T5Stack, blocks="block"),),
    attention_classes=(t5.T5Attention,),
    feed_forward_classes=(t5.T5DenseActDense, t5.T5DenseGatedActDense),
    layer_norm_classes=(t5.T5LayerNorm,),
    decoder_only_arguments=_CROSS_ATTENTION_ARGUMENTS,
)

MT5_FAMILY = ModelFamily(
    name="mt5",
    model_classes=(mt5.MT5PreTrainedModel,),
    block_classes=(mt5.MT5Block,),
    stack_declarations=(Stack(mt5.MT5Stack, blocks="block"),),
    attention_classes=(mt5.MT5Attention,),
    feed_forward_classes=(mt5.MT5DenseActDense, mt5.MT5DenseGatedActDense),
    layer_norm_classes=(mt5.MT5LayerNorm,),
    decoder_only_arguments=_CROSS_ATTENTION_ARGUMENTS,
)

# UMT5 computes a relative-attention bias inside every attention (no bias is passed between blocks).
UMT5_FAMILY = ModelFamily(
    name="umt5",
    model_classes=(umt5.UMT5PreTrainedModel,),
    block_classes=(umt5.UMT5Block,),
    stack_declarations=(Stack(umt5.UMT5Stack, blocks="block"),),
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
    block_classes=(longt5.LongT5Block,),
    stack_declarations=(Stack(longt5.LongT5Stack, blocks="block"),),
    attention_classes=(longt5.LongT5Attention, longt5.LongT5LocalAttention, longt5.LongT5TransientGlobalAttention),
    feed_forward_classes=(longt5.LongT5DenseActDense, longt5.LongT5DenseGatedActDense),
    layer_norm_classes=(longt5.LongT5LayerNorm,),
    decoder_only_arguments=_CROSS_ATTENTION_ARGUMENTS,
)

# Llama and the families built like it (Qwen2, Mistral): one decoder stack, pre-norm blocks
# `h + attn(norm(h))`, `h + mlp(norm(h))`; no dropout on the residual branch, so a site is the
# sublayer's output itself.
_LLAMA_LIKE = dict(ffn_size_attribute="intermediate_size", max_positions_attribute="max_position_embeddings",
                   norm_readers={"input_layernorm": ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
                                 "post_attention_layernorm": ("mlp.gate_proj", "mlp.up_proj")})

LLAMA_FAMILY = ModelFamily(
    name="llama",
    model_classes=(llama.LlamaPreTrainedModel,),
    block_classes=(llama.LlamaDecoderLayer,),
    stack_declarations=(Stack(llama.LlamaModel, blocks="layers", name="decoder"),),
    attention_classes=(llama.LlamaAttention,),
    feed_forward_classes=(llama.LlamaMLP,),
    layer_norm_classes=(llama.LlamaRMSNorm,),
    **_LLAMA_LIKE,
)

QWEN2_FAMILY = ModelFamily(
    name="qwen2",
    model_classes=(qwen2.Qwen2PreTrainedModel,),
    block_classes=(qwen2.Qwen2DecoderLayer,),
    stack_declarations=(Stack(qwen2.Qwen2Model, blocks="layers", name="decoder"),),
    attention_classes=(qwen2.Qwen2Attention,),
    feed_forward_classes=(qwen2.Qwen2MLP,),
    layer_norm_classes=(qwen2.Qwen2RMSNorm,),
    **_LLAMA_LIKE,
)

MISTRAL_FAMILY = ModelFamily(
    name="mistral",
    model_classes=(mistral.MistralPreTrainedModel,),
    block_classes=(mistral.MistralDecoderLayer,),
    stack_declarations=(Stack(mistral.MistralModel, blocks="layers", name="decoder"),),
    attention_classes=(mistral.MistralAttention,),
    feed_forward_classes=(mistral.MistralMLP,),
    layer_norm_classes=(mistral.MistralRMSNorm,),
    **_LLAMA_LIKE,
)


def _gpt2_ffn_size(config) -> int:
    return config.n_inner if config.n_inner is not None else 4 * config.n_embd


# GPT-2's attention and MLP each end in their own residual dropout (`resid_dropout`, `dropout`),
# inside the module kept whole: the adapter reads the sublayer's output after that dropout.
GPT2_FAMILY = ModelFamily(
    name="gpt2",
    model_classes=(gpt2.GPT2PreTrainedModel,),
    block_classes=(gpt2.GPT2Block,),
    stack_declarations=(Stack(gpt2.GPT2Model, blocks="h", name="decoder"),),
    attention_classes=(gpt2.GPT2Attention,),
    feed_forward_classes=(gpt2.GPT2MLP,),
    layer_norm_classes=(nn.LayerNorm,),
    decoder_only_arguments=("encoder_hidden_states", "encoder_attention_mask"),
    ffn_size=_gpt2_ffn_size,
    max_positions_attribute="n_positions",
    placement="on each sublayer's output after its own residual dropout (GPT-2 applies it inside the "
              "attention and the MLP), before the residual add",
)

# BART's FFN is the block's own fc1 / activation / fc2 (no module of its own): `nn.Linear` is its
# feed-forward class, and a residual branch holding a Linear but no attention is the FFN site.
# Its dropout is functional (`nn.functional.dropout(..., training=self.training)`), recognised as
# such. In float16 its layers clamp on `isinf(h).any()`, a Python branch on values: not traceable.
_BART_LIKE = dict(
    feed_forward_classes=(nn.Linear,),
    layer_norm_classes=(nn.LayerNorm,),
    ffn_size_attribute="encoder_ffn_dim",
    max_positions_attribute="max_position_embeddings",
    traceable_dtypes=(torch.float32, torch.float64, torch.bfloat16),
)

# BartForCausalLM runs the decoder alone: its layers are the encoder-decoder's, traced with their
# cross-attention, but receive no encoder states, which the traced graph cannot tell from a decoder
# that does. Refused rather than run wrong.
_DECODER_ALONE = ("runs the decoder without an encoder: its layers' cross-attention receives no encoder states, "
                  "which surgery does not support yet; use the encoder-decoder class")

BART_FAMILY = ModelFamily(
    name="bart",
    refused_classes=((bart.BartForCausalLM, _DECODER_ALONE),),
    model_classes=(bart.BartPreTrainedModel,),
    block_classes=(bart.BartEncoderLayer, bart.BartDecoderLayer),
    stack_declarations=(Stack(bart.BartEncoder, blocks="layers", name="encoder"),
                        Stack(bart.BartDecoder, blocks="layers", name="decoder")),
    attention_classes=(bart.BartAttention,),
    placement="as in the paper (post-norm: the layer norm follows the residual add)",
    **_BART_LIKE,
)

MBART_FAMILY = ModelFamily(
    name="mbart",
    refused_classes=((mbart.MBartForCausalLM, _DECODER_ALONE),),
    model_classes=(mbart.MBartPreTrainedModel,),
    block_classes=(mbart.MBartEncoderLayer, mbart.MBartDecoderLayer),
    stack_declarations=(Stack(mbart.MBartEncoder, blocks="layers", name="encoder"),
                        Stack(mbart.MBartDecoder, blocks="layers", name="decoder")),
    attention_classes=(mbart.MBartAttention,),
    **_BART_LIKE,
)

# BERT's attention (`BertAttention`) and its FFN output layer (`BertOutput`) end in
# `LayerNorm(dropout(dense(x)) + residual)`: the tracer follows them (`traced_through`) and keeps
# the inner self-attention whole, so the site is on the dense output before the dropout. The FFN's
# layers are plain Linear modules, found like BART's.
_BERT_LIKE = dict(
    decoder_only_arguments=("encoder_hidden_states", "encoder_attention_mask"),
    feed_forward_classes=(nn.Linear,),
    layer_norm_classes=(nn.LayerNorm,),
    ffn_size_attribute="intermediate_size",
    max_positions_attribute="max_position_embeddings",
    placement="as in the paper (post-norm: the layer norm follows the residual add)",
)

BERT_FAMILY = ModelFamily(
    name="bert",
    model_classes=(bert.BertPreTrainedModel,),
    block_classes=(bert.BertLayer,),
    stack_declarations=(Stack(bert.BertEncoder, blocks="layer", name="encoder"),),
    attention_classes=(bert.BertAttention,),
    traced_through=(bert.BertAttention,),
    extra_leaf_classes=(bert.BertSelfAttention,),
    **_BERT_LIKE,
)

ROBERTA_FAMILY = ModelFamily(
    name="roberta",
    model_classes=(roberta.RobertaPreTrainedModel,),
    block_classes=(roberta.RobertaLayer,),
    stack_declarations=(Stack(roberta.RobertaEncoder, blocks="layer", name="encoder"),),
    attention_classes=(roberta.RobertaAttention,),
    traced_through=(roberta.RobertaAttention,),
    extra_leaf_classes=(roberta.RobertaSelfAttention,),
    **_BERT_LIKE,
)

FAMILIES: list[ModelFamily] = [T5_FAMILY, MT5_FAMILY, UMT5_FAMILY, LONGT5_FAMILY, LLAMA_FAMILY, QWEN2_FAMILY,
                               MISTRAL_FAMILY, GPT2_FAMILY, BART_FAMILY, MBART_FAMILY, BERT_FAMILY, ROBERTA_FAMILY]


def detect_family(model: nn.Module) -> ModelFamily:
    """The registered family `model` belongs to (first match wins), or a clear error.

    >>> from transformers import MT5Config, MT5EncoderModel
    >>> detect_family(MT5EncoderModel(MT5Config(d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2, vocab_size=32))).name
    'mt5'
    """
    for family in FAMILIES:
        if isinstance(model, family.model_classes):
            for refused, reason in family.refused_classes:
                if isinstance(model, refused):
                    raise SurgeryError(f"model of class {type(model).__name__} ({family.name} family) is not supported: {reason}")
            return family
    known = ", ".join(cls.__name__ for family in FAMILIES for cls in family.model_classes)
    raise SurgeryError(
        f"model of class {type(model).__name__} belongs to no registered family; supported: {known} and their "
        "subclasses (append a surgery.family.ModelFamily to surgery.family_registry.FAMILIES to add one)"
    )
