"""Prompt tuning (Lester et al., 2021): trainable vectors prepended to the input embeddings.

The whole model is frozen, layer norms included; only the prompt — `length` × d_model numbers,
76,800 on T5-base (0.034 %, paper Table 1) — trains. Two initialisations (paper §5.1):

* ``random`` (PROMPT TUNING-R): U(−init_range, init_range) entries, init_range 0.5 as in the
  authors' code (rabeehk/compacter, modeling_t5.py ``init_prefix_weights``: ``uniform_(-0.5, 0.5)``;
  the paper only says "randomly initialized"); ``random_distribution: normal`` draws N(0, init_std²);
* ``vocab`` (PROMPT TUNING-T): copies of the input-embedding rows of `length` sampled vocabulary
  tokens, read from the model's embeddings when the recipe is applied (so after the pretrained
  weights are loaded). Ids are drawn without replacement from [vocab_low, vocab_high) minus the
  config's special ids. The default upper end, 5,000, keeps to common tokens as Lester et al. do:
  T5's SentencePiece ids are ordered by piece score, and ids ≥ 32,000 are sentinels and unused rows.

Where the prompt enters, and why there. The prompt must be seen by the encoder *and* by the
decoder's cross-attention, on every path that runs the model:

* training and evaluation call the top-level ``forward``, which runs the encoder, then the decoder
  with ``encoder_attention_mask=attention_mask`` (the caller's, unextended);
* ``generate()`` (greedy and beam) calls the encoder stack directly, once, then the top-level
  ``forward`` with ``encoder_outputs`` and the caller's ``attention_mask`` (repeated per beam).

So the method hooks the two *stacks* (found by class, wherever the model class keeps them), not
the top-level forward: a forward pre-hook on the
encoder stack embeds ``input_ids``, prepends the prompt and prepends ``length`` ones to the
attention mask; a forward pre-hook on the decoder stack prepends ``length`` ones to
``encoder_attention_mask`` when it is exactly ``length`` shorter than ``encoder_hidden_states``
(a mask that already covers the prompt is left alone). Both hooks see every path above, and the
model keeps its class and its ``generate()``. In encoder-only classes (T5EncoderModel,
T5ForTokenClassification) a forward hook drops the prompt's positions from the encoder's output,
so per-token heads, labels and masks keep the input's length.

T5 has relative positions and no position table, so there is no hard length limit; the budget is
the explicit option ``max_source_length`` (the longest encoder input you will use, prompt included),
and the prompt must leave room for at least one input token.

Decoder-only models (Llama, Qwen2, Mistral, GPT-2) have one stack, which a forward pre-hook changes
on the call that starts a sequence (no cache yet): the prompt goes before the input embeddings and
holds positions 0 … length−1. On every call — generation steps with a KV cache included — the
caller's attention mask gains ``length`` ones in front and explicit ``position_ids`` move up by
``length``, so each new token sees the prompt in the cache. A forward hook drops the prompt's
positions from that first call's output: logits, labels and classification heads keep the input's
length. A model with a position table (GPT-2) must have more positions than the prompt. Encoders
with learned absolute positions that build their embeddings their own way (BART, BERT, RoBERTa)
are refused at plan time.

>>> import torch, surgery
>>> from transformers import T5Config, T5ForConditionalGeneration
>>> model = T5ForConditionalGeneration(T5Config(d_model=64, d_kv=8, d_ff=128, num_layers=2, num_heads=4, vocab_size=100))
>>> report = surgery.report(surgery.apply(model, {"method": "prompt-tuning", "options": {"length": 5, "init": "vocab"}}))
>>> report.trainable, model.surgery.adapters.default.prompt.weight.shape
(320, torch.Size([5, 64]))
>>> model.get_encoder()(input_ids=torch.tensor([[7, 8, 9]])).last_hidden_state.shape   # 5 prompt + 3 tokens
torch.Size([1, 8, 64])
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from surgery.errors import RecipeError
from surgery.family import ModelDims, ModelFamily
from surgery.method import ModelMethod, register_method
from surgery.options import INT64_MAX, SIZE, Annotated, Range, require
from surgery.adapter_scope import AdapterScope

from .inits import PROMPT_RANDOM_RANGE


class SoftPrompt(nn.Module):
    """`length` trainable vectors (length, d_model) and the two ways the model sees them."""

    def __init__(self, initial: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(initial)

    @property
    def length(self) -> int:
        return self.weight.shape[0]

    def prepend(self, inputs_embeds: torch.Tensor) -> torch.Tensor:  # (B, T, d) → (B, P + T, d)
        batch = inputs_embeds.shape[0]
        prompt = self.weight.to(inputs_embeds.dtype).unsqueeze(0).expand(batch, -1, -1)
        return torch.cat([prompt, inputs_embeds], dim=1)

    def extend_mask(self, mask: torch.Tensor) -> torch.Tensor:  # (B, T) → (B, P + T), prompt always visible
        if mask.dim() != 2:
            raise ValueError(f"prompt tuning extends 2-D attention masks (batch, length); got shape {tuple(mask.shape)}")
        ones = torch.ones(mask.shape[0], self.length, dtype=mask.dtype, device=mask.device)
        return torch.cat([ones, mask], dim=1)

    def extra_repr(self) -> str:
        return f"length={self.length}, hidden_size={self.weight.shape[1]}"


_POSITIONAL_NAMES: dict[type, list[str]] = {}


def _as_keywords(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments all by name (the stack's forward may be called positionally)."""
    names = _POSITIONAL_NAMES.get(type(module))
    if names is None:
        parameters = list(inspect.signature(type(module).forward).parameters.values())[1:]  # skip self
        names = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        _POSITIONAL_NAMES[type(module)] = names
    if len(args) > len(names):
        raise TypeError(f"{type(module).__name__}.forward got {len(args)} positional arguments, expected at most {len(names)}")
    return {**dict(zip(names, args)), **kwargs}


def _prepend_to_inputs(stack: nn.Module, kwargs: dict[str, Any], prompt: nn.Module) -> bool:
    """inputs_embeds ← [prompt; embeddings of the input] in `kwargs` (input_ids dropped); False where the
    call has neither input_ids nor inputs_embeds."""
    embeds, input_ids = kwargs.get("inputs_embeds"), kwargs.get("input_ids")
    if embeds is None:
        if input_ids is None:
            return False
        embeds = stack.get_input_embeddings()(input_ids)
    kwargs["input_ids"] = None
    kwargs["inputs_embeds"] = prompt.prepend(embeds)
    return True


class PromptHook:
    """A hook of one soft prompt on a stack: it acts only while the prompt's adapter is active (`scope`)."""

    def __init__(self, prompt: SoftPrompt, scope: AdapterScope):
        self.prompt, self.scope = prompt, scope


class PrependPromptToEncoder(PromptHook):
    """Forward pre-hook of the encoder stack: input embeddings ← [prompt; embeddings], mask ← [1…1; mask]."""

    def __call__(self, stack: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]):
        if not self.scope.is_active():
            return None
        kwargs = _as_keywords(stack, args, kwargs)
        if not _prepend_to_inputs(stack, kwargs, self.prompt):
            return None  # let the stack raise its own error about missing inputs
        if kwargs.get("attention_mask") is not None:
            kwargs["attention_mask"] = self.prompt.extend_mask(kwargs["attention_mask"])
        return (), kwargs


class ExtendCrossAttentionMask(PromptHook):
    """Forward pre-hook of the decoder stack: encoder_attention_mask ← [1…1; mask] when it misses the prompt."""

    def __call__(self, stack: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]):
        if not self.scope.is_active():
            return None
        kwargs = _as_keywords(stack, args, kwargs)
        states, mask = kwargs.get("encoder_hidden_states"), kwargs.get("encoder_attention_mask")
        if states is None or mask is None or mask.shape[-1] == states.shape[1]:
            return None  # no cross-attention, all-ones default, or already covering the prompt
        if mask.shape[-1] + self.prompt.length != states.shape[1]:
            raise ValueError(
                f"encoder_attention_mask has length {mask.shape[-1]}, but the encoder states have {states.shape[1]} "
                f"positions ({self.prompt.length} of them prompt): pass the mask of the encoder's input"
            )
        kwargs["encoder_attention_mask"] = self.prompt.extend_mask(mask)
        return (), kwargs


class DropPromptStates(PromptHook):
    """Forward hook of an encoder-only model's stack: its output states lose the prompt's positions
    (they attended to the prompt; the outputs line up with the input tokens again)."""

    def __call__(self, stack: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
        if not self.scope.is_active():
            return None
        if isinstance(output, tuple):
            return (output[0][:, self.prompt.length:], *output[1:])
        output.last_hidden_state = output.last_hidden_state[:, self.prompt.length:]
        return output


class PrependPromptToDecoderOnly(PromptHook):
    """Forward pre-hook of a decoder-only model's stack (Llama, GPT-2, ...): the prompt goes before the
    input embeddings on the call that starts a sequence (no cache yet); on every call the caller's
    attention mask gains the prompt's ones in front and explicit positions move up by its length
    (the prompt holds positions 0 … P−1), so cached generation steps line up with the prompt in the cache.
    """

    def __init__(self, prompt: SoftPrompt, scope: AdapterScope):
        super().__init__(prompt, scope)
        self.prepended = False  # read by DropPromptStatesOnce after the same call

    def __call__(self, stack: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]):
        self.prepended = False
        if not self.scope.is_active():
            return None
        kwargs = _as_keywords(stack, args, kwargs)
        length = self.prompt.length
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        starts = cache is None or cache.get_seq_length() == 0
        if starts:
            if not _prepend_to_inputs(stack, kwargs, self.prompt):
                return None  # let the stack raise its own error about missing inputs
            if kwargs.get("token_type_ids") is not None:
                types = kwargs["token_type_ids"]
                kwargs["token_type_ids"] = torch.cat([types.new_zeros(types.shape[0], length), types], dim=1)
        if kwargs.get("attention_mask") is not None:
            kwargs["attention_mask"] = self.prompt.extend_mask(kwargs["attention_mask"])
        positions = kwargs.get("position_ids")
        if positions is not None:
            positions = positions + length
            if starts:
                own = torch.arange(length, device=positions.device, dtype=positions.dtype).expand(positions.shape[0], -1)
                positions = torch.cat([own, positions], dim=1)
            kwargs["position_ids"] = positions
        self.prepended = starts
        return (), kwargs


class DropPromptStatesOnce(DropPromptStates):
    """Forward hook of a decoder-only stack: drop the prompt's positions from the output of a call that
    prepended them, so logits, labels and heads line up with the input tokens."""

    def __init__(self, prompt: SoftPrompt, scope: AdapterScope, prepend: PrependPromptToDecoderOnly):
        super().__init__(prompt, scope)
        self.prepend = prepend

    def __call__(self, stack: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
        if not self.prepend.prepended:
            return None
        self.prepend.prepended = False
        return super().__call__(stack, args, output)


SEED_RANGE = Range(minimum=0, maximum=INT64_MAX, valid=f"an integer in [0, {INT64_MAX}]")


@dataclass
class PromptTuningOptions:
    """Options of the `prompt_tuning` method (see the module docstring)."""

    length: Annotated[int, Range(minimum=1, valid="a positive integer"), SIZE] = 100  # prompt vectors (100 in the paper, §5.5; configs prefix_dim 100)
    init: Literal["random", "vocab"] = "random"
    random_distribution: Literal["uniform", "normal"] = "uniform"  # random: the authors' uniform (methods.inits)
    # random, uniform: U(−init_range, init_range); 0.5 in the authors' code
    init_range: Annotated[float, Range(above=0, valid="a finite number > 0")] = PROMPT_RANDOM_RANGE
    init_std: Annotated[float, Range(above=0, valid="a finite number > 0")] = 0.5  # random, normal: N(0, init_std²)
    vocab_low: Annotated[int, Range(minimum=0, valid="an integer ≥ 0")] = 3    # vocab: sample ids in [vocab_low, vocab_high) …
    vocab_high: Annotated[int, Range(minimum=1, valid="a positive integer")] = 5000  # … clipped to the vocabulary size, special ids excluded
    # encoder-input budget, prompt included (T5 has no position table)
    max_source_length: Annotated[int, Range(minimum=2, valid="an integer ≥ 2")] = 512
    seed: Annotated[int, SEED_RANGE] = 0


def special_token_ids(config: Any) -> set[int]:
    ids: set[int] = set()
    for field in ("pad_token_id", "eos_token_id", "bos_token_id", "decoder_start_token_id", "unk_token_id"):
        value = getattr(config, field, None)
        values = value if isinstance(value, (list, tuple)) else [value]
        ids.update(v for v in values if isinstance(v, int))
    return ids


def sample_vocabulary_ids(options: PromptTuningOptions, vocab_size: int, excluded: set[int]) -> torch.Tensor:
    """`length` token ids from [vocab_low, min(vocab_high, vocab_size)) \\ excluded, without replacement
    while possible (cycling through a fresh order beyond that)."""
    candidates = torch.tensor([i for i in range(options.vocab_low, min(options.vocab_high, vocab_size)) if i not in excluded])
    if len(candidates) == 0:
        raise ValueError(f"no token id in [{options.vocab_low}, {min(options.vocab_high, vocab_size)}) to sample")
    generator = torch.Generator().manual_seed(options.seed)
    rounds = math.ceil(options.length / len(candidates))
    order = torch.cat([torch.randperm(len(candidates), generator=generator) for _ in range(rounds)])
    return candidates[order[: options.length]]


@register_method
class PromptTuning(ModelMethod):
    """A soft prompt prepended to the input (the encoder's, or a decoder-only model's); everything else frozen."""

    name = "prompt-tuning"
    Options = PromptTuningOptions
    options: PromptTuningOptions
    one_active_at_a_time = True  # two prompts would be prepended in the order they were applied

    def validate(self, dims: ModelDims, family: ModelFamily) -> None:
        o = self.options
        self.check_family(dims, family)
        budget_reason = (
            f"leaves no room for input tokens: T5 has relative positions (no position table), so the budget is "
            f"options.max_source_length = {o.max_source_length}, the longest encoder input prompt included; "
            f"the prompt must be shorter (or raise max_source_length)"
        )
        require(o.length < o.max_source_length, "options.length", o.length,
                f"an integer in [1, {o.max_source_length - 1}]", reason=budget_reason)
        if o.init == "vocab":
            high = min(o.vocab_high, dims.vocab_size)
            require(0 <= o.vocab_low < high, "options.vocab_low", o.vocab_low,
                    f"an id in [0, {high}) (vocab_high {o.vocab_high} clipped to the vocabulary size {dims.vocab_size})")

    def check_family(self, dims: ModelDims, family: ModelFamily) -> None:
        """Refuse models the prompt cannot enter yet: encoders with learned absolute positions (BART, BERT).

        >>> from surgery.family_registry import BERT_FAMILY
        >>> from surgery.family import ModelDims
        >>> dims = ModelDims(64, 128, 4, 100, {"encoder": 2}, True, 512)
        >>> PromptTuning(PromptTuningOptions()).check_family(dims, BERT_FAMILY)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        surgery.errors.RecipeError: recipe key 'method': 'prompt-tuning' ... bert encoders add learned absolute positions...
        """
        if "encoder" in dims.stack_depths and dims.max_positions is not None:
            raise RecipeError("method", self.name, valid="a T5-family model (relative positions) or a decoder-only model", reason=(
                f"prepends trained vectors to the encoder's input, but {family.name} encoders add learned absolute "
                f"positions ({dims.max_positions} of them) and build their input embeddings inside the model in their "
                "own way; prompt tuning of such encoders is not supported yet"))
        if "encoder" not in dims.stack_depths and dims.max_positions is not None:
            require(self.options.length < dims.max_positions, "options.length", self.options.length,
                    f"less than the model's {dims.max_positions} positions")

    def transform_model(self, model: nn.Module, family: ModelFamily, dims: ModelDims, scope: AdapterScope) -> None:
        o = self.options
        embeddings = model.get_input_embeddings().weight
        if o.init == "vocab":  # checked here, in the dry run too: the special ids come from the model's config
            high, excluded = min(o.vocab_high, embeddings.shape[0]), special_token_ids(model.config)
            if all(i in excluded for i in range(o.vocab_low, high)):
                raise RecipeError("options.vocab_low", o.vocab_low, valid=f"a range [vocab_low, vocab_high) with a "
                                  f"token id that is not special (special: {sorted(excluded)})",
                                  reason=f"leaves no token id to sample in [{o.vocab_low}, {high})")
        if embeddings.device.type == "meta":  # the plan's dry run: shapes only, nothing drawn or sampled
            initial = torch.empty(o.length, embeddings.shape[1], device="meta", dtype=embeddings.dtype)
        elif o.init == "vocab":
            ids = sample_vocabulary_ids(o, embeddings.shape[0], special_token_ids(model.config))
            initial = embeddings.detach()[ids.to(embeddings.device)].clone()
        else:
            generator = torch.Generator().manual_seed(o.seed)
            if o.random_distribution == "uniform":
                initial = (torch.rand(o.length, embeddings.shape[1], generator=generator) * 2 - 1) * o.init_range
            else:
                initial = torch.randn(o.length, embeddings.shape[1], generator=generator) * o.init_std
            initial = initial.to(device=embeddings.device, dtype=embeddings.dtype)
        prompt = SoftPrompt(initial)
        scope.container.add_module("prompt", prompt)

        stacks = {name: model.get_submodule(path) for name, path in family.stack_paths(model).items()}
        if "encoder" not in stacks:  # decoder-only (Llama, GPT-2, ...): the prompt goes before the input
            prepend = PrependPromptToDecoderOnly(prompt, scope)
            scope.keep(stacks["decoder"].register_forward_pre_hook(prepend, with_kwargs=True))
            scope.keep(stacks["decoder"].register_forward_hook(DropPromptStatesOnce(prompt, scope, prepend)))
            return
        scope.keep(stacks["encoder"].register_forward_pre_hook(PrependPromptToEncoder(prompt, scope), with_kwargs=True))
        if "decoder" in stacks:
            scope.keep(stacks["decoder"].register_forward_pre_hook(ExtendCrossAttentionMask(prompt, scope), with_kwargs=True))
        else:
            # Encoder-only classes (T5EncoderModel, *ForTokenClassification): no decoder reads the
            # prompt's states, and the caller's per-token heads, labels and masks have the input's length.
            scope.keep(stacks["encoder"].register_forward_hook(DropPromptStates(prompt, scope)))

    def trainable_groups(self, model: nn.Module, family: ModelFamily, scope: AdapterScope) -> dict[str, list[str]]:
        return {"prompt": [scope.path("prompt.weight")]}

    def mixed_batch_refusal(self) -> str | None:
        return (f"method {self.name!r} prepends its {self.options.length} vectors to every example's input, which "
                "lengthens the encoder's sequence: one batch cannot have them for some examples only (run its examples "
                "as a batch of their own)")

    def fold_refusal(self) -> str | None:
        return (f"method {self.name!r} prepends {self.options.length} trained vectors to the encoder's input: they are "
                "extra input positions, not a change of any weight, and T5's architecture has no place to store them")

    def closed_form(self, plan: Any) -> list[tuple[str, str, int]]:
        return [("prompt", "length × d_model", self.options.length * plan.dims.hidden_size)]
