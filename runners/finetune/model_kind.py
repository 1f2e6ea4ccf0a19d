"""What kind of model a run trains, chosen once from its family; batching, the loss and scoring ask it.

==========  =====================================  ========================================  ==============================
kind        loaded as (families)                   one training example                      scored from
==========  =====================================  ========================================  ==============================
seq2seq     AutoModelForSeq2SeqLM                  source → encoder, target → labels         greedy ``generate()``
            (t5, mt5, umt5, longt5, bart, mbart)
causal      AutoModelForCausalLM                   prompt + target as one sequence, labels   greedy ``generate()`` after the
            (llama, qwen2, mistral, gpt2)          -100 on the prompt and the padding        prompt, batches padded left
classifier  AutoModelForSequenceClassification     source → input; the label's index (the    argmax of the logits (the value
            (bert, roberta)                        number itself for a regression task)      itself for regression)
==========  =====================================  ========================================  ==============================

The kind follows from the stacks the family declaration finds (`surgery.family_registry`): an
encoder and a decoder → seq2seq, a decoder alone → causal, an encoder alone → classifier.

The causal prompt: the task's source, a space and ``answer:``; the target follows it as
`` <target>`` and the tokenizer's EOS (a BOS first where the tokenizer has one)::

    [bos] sst2 sentence: the sofa looked awful . answer:  negative </s>
    └──────────── labels -100 ────────────────────────┘  └─ loss ──┘

>>> from runners.tasks import get_task
>>> from runners.tasks.data import embedded_tokenizer
>>> tokenizer, task = embedded_tokenizer(), get_task("embedded-sst2")
>>> [example] = CAUSAL.encode_training(tokenizer, task, [("sst2 sentence: the sofa .", "negative")], 128, 8)
>>> tokenizer.decode(example.source_ids), tokenizer.decode(example.target_ids)
('sst2 sentence: the sofa . answer:', 'negative</s>')
>>> batch = CAUSAL.collate([example], pad_token_id=0)
>>> (batch["labels"] != -100).sum().item() == len(example.target_ids)
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
import torch.nn.functional as F

from .batches import IGNORE_INDEX, EncodedExample, collate, encode_pairs, encode_sources, pad
from .errors import TrainingSetupError
from .generation import generate_predictions, generation_config

PROMPT_SEPARATOR = "answer:"  # ends a causal model's prompt; the target follows it

Autocast = Callable[[], AbstractContextManager]


def pad_id(tokenizer) -> int:
    """The id batches are padded with: the tokenizer's pad token, else its EOS (GPT-2 has no pad token)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


class ModelKind:
    """How one kind of model is batched, trained and scored (the seq2seq behaviour is the base)."""

    name = "seq2seq"
    auto_class = "AutoModelForSeq2SeqLM"

    def check_task(self, task, family: str) -> None:
        """Raise TrainingSetupError for a task this kind cannot learn (every task suits a generating model)."""

    def model_arguments(self, task) -> dict[str, Any]:
        """Extra arguments of ``from_pretrained`` / ``from_config`` for `task` (a classifier's label count)."""
        return {}

    def fit_recipe(self, mapping: dict[str, Any]) -> dict[str, Any]:
        """The recipe as this kind trains it (a classifier's new head must train)."""
        return mapping

    def encode_training(self, tokenizer, task, pairs: Sequence[tuple[str, str]], max_source_length: int,
                        max_target_length: int) -> list[EncodedExample]:
        return encode_pairs(tokenizer, pairs, max_source_length, max_target_length)

    def encode_inputs(self, tokenizer, sources: Sequence[str], max_source_length: int) -> list[list[int]]:
        """What evaluation feeds the model for each source."""
        return encode_sources(tokenizer, sources, max_source_length)

    def loss_terms(self, example: EncodedExample) -> int:
        """How many terms `example` adds to the summed loss (its target tokens)."""
        return len(example.target_ids)

    def collate(self, examples: Sequence[EncodedExample], pad_token_id: int) -> dict[str, torch.Tensor]:
        return collate(examples, pad_token_id)

    def loss_sum(self, model, batch: dict[str, torch.Tensor], unwrapped) -> torch.Tensor:
        """Summed cross-entropy over the target tokens (`unwrapped` shifts the labels into decoder inputs)."""
        labels = batch["labels"]
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       decoder_input_ids=unwrapped.prepare_decoder_input_ids_from_labels(labels=labels)).logits
        return _summed_cross_entropy(logits, labels)

    def predict(self, model, tokenizer, task, inputs: Sequence[Sequence[int]], batch_size: int, max_new_tokens: int,
                device: torch.device, autocast: Autocast = nullcontext, progress=None) -> list[str]:
        """Decoded predictions for the encoded `inputs`, in their order."""
        return generate_predictions(model, tokenizer, inputs, batch_size, max_new_tokens, device, autocast, progress)


def _summed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                           ignore_index=IGNORE_INDEX, reduction="sum")


def _in_length_order(inputs: Sequence[Sequence[int]], batch_size: int):
    """Batches of input positions, shortest inputs first (less padding)."""
    order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]))
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


class CausalKind(ModelKind):
    """A decoder-only language model: the target continues the prompt; the loss is on the target alone."""

    name = "causal"
    auto_class = "AutoModelForCausalLM"

    def _prompt(self, tokenizer, source: str, max_source_length: int) -> list[int]:
        separator = tokenizer(" " + PROMPT_SEPARATOR, add_special_tokens=False)["input_ids"]
        start = [] if tokenizer.bos_token_id is None else [tokenizer.bos_token_id]
        room = max(0, max_source_length - len(separator) - len(start))
        return start + tokenizer(source, add_special_tokens=False)["input_ids"][:room] + separator

    def encode_training(self, tokenizer, task, pairs, max_source_length, max_target_length):
        examples = []
        for source, target in pairs:
            words = tokenizer(" " + target, add_special_tokens=False)["input_ids"][:max(0, max_target_length - 1)]
            examples.append(EncodedExample(self._prompt(tokenizer, source, max_source_length),
                                           words + [tokenizer.eos_token_id]))
        return examples

    def encode_inputs(self, tokenizer, sources, max_source_length):
        return [self._prompt(tokenizer, source, max_source_length) for source in sources]

    def collate(self, examples, pad_token_id):
        """input_ids / attention_mask / labels (B, T), padded right; labels -100 on the prompt and the padding."""
        sequences = [e.source_ids + e.target_ids for e in examples]
        return {"input_ids": pad(sequences, pad_token_id), "attention_mask": pad([[1] * len(s) for s in sequences], 0),
                "labels": pad([[IGNORE_INDEX] * len(e.source_ids) + e.target_ids for e in examples], IGNORE_INDEX)}

    def loss_sum(self, model, batch, unwrapped):
        """Position t predicts token t + 1: the logits before the last against the labels after the first."""
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return _summed_cross_entropy(logits[:, :-1], batch["labels"][:, 1:])

    @torch.no_grad()
    def predict(self, model, tokenizer, task, inputs, batch_size, max_new_tokens, device, autocast=nullcontext,
                progress=None):
        """Greedy continuations of the prompts, padded on the left so that every prompt ends where generation starts."""
        was_training = model.training
        model.eval()
        config = generation_config(tokenizer, max_new_tokens, model)
        config.pad_token_id = pad_id(tokenizer)
        predictions = [""] * len(inputs)
        for chosen in _in_length_order(inputs, batch_size):
            prompts = [list(inputs[i]) for i in chosen]
            width = max(len(p) for p in prompts)
            ids = torch.tensor([[pad_id(tokenizer)] * (width - len(p)) + p for p in prompts], device=device)
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
            with autocast():
                output = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
            for index, text in zip(chosen, tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)):
                predictions[index] = text.strip()
            if progress is not None:
                progress.update(len(chosen))
        model.train(was_training)
        return predictions


class ClassifierKind(ModelKind):
    """An encoder with a sequence-classification head: one label per example (a number for regression)."""

    name = "classifier"
    auto_class = "AutoModelForSequenceClassification"

    def check_task(self, task, family: str) -> None:
        if task.target_kind == "text":
            raise TrainingSetupError(
                f"task {task.name!r} has free-text targets, but a {family} model is trained as a sequence "
                "classifier (a label or a number per example); give a classification or regression task, or a "
                "seq2seq or decoder-only model")

    def model_arguments(self, task) -> dict[str, Any]:
        targets = task.target_kind
        if targets == "number":
            return {"num_labels": 1, "problem_type": "regression"}
        if targets == "label":
            return {"num_labels": len(task.labels), "problem_type": "single_label_classification"}
        return {}  # free text: `check_task` refuses it

    def fit_recipe(self, mapping):
        """The recipe with ``head`` among what it trains: the classification head starts at random."""
        train = mapping.get("train") or []
        train = [train] if isinstance(train, str) else list(train)
        return mapping if "head" in train else {**mapping, "train": [*train, "head"]}

    def encode_training(self, tokenizer, task, pairs, max_source_length, max_target_length):
        sources = encode_sources(tokenizer, [source for source, _ in pairs], max_source_length)
        numeric = task.target_kind == "number"
        return [EncodedExample(ids, [], float(target) if numeric else task.labels.index(target))
                for ids, (_, target) in zip(sources, pairs)]

    def loss_terms(self, example):
        return 1

    def collate(self, examples, pad_token_id):
        labels = [e.label for e in examples]
        dtype = torch.float32 if isinstance(labels[0], float) else torch.long
        return {"input_ids": pad([e.source_ids for e in examples], pad_token_id),
                "attention_mask": pad([[1] * len(e.source_ids) for e in examples], 0),
                "labels": torch.tensor(labels, dtype=dtype)}

    def loss_sum(self, model, batch, unwrapped):
        """Summed cross-entropy over the examples; summed squared error for regression (one output)."""
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
        if batch["labels"].is_floating_point():
            return F.mse_loss(logits.squeeze(-1), batch["labels"], reduction="sum")
        return F.cross_entropy(logits, batch["labels"], reduction="sum")

    @torch.no_grad()
    def predict(self, model, tokenizer, task, inputs, batch_size, max_new_tokens, device, autocast=nullcontext,
                progress=None):
        """The label of the largest logit, or the regression output written as a number."""
        was_training = model.training
        model.eval()
        predictions = [""] * len(inputs)
        for chosen in _in_length_order(inputs, batch_size):
            sources = [inputs[i] for i in chosen]
            with autocast():
                logits = model(input_ids=pad(sources, pad_id(tokenizer)).to(device),
                               attention_mask=pad([[1] * len(s) for s in sources], 0).to(device)).logits.float()
            for index, row in zip(chosen, logits.cpu()):
                predictions[index] = (f"{row[0].item():.4f}" if task.target_kind == "number"
                                      else task.labels[int(row.argmax())])
            if progress is not None:
                progress.update(len(chosen))
        model.train(was_training)
        return predictions


SEQ2SEQ, CAUSAL, CLASSIFIER = ModelKind(), CausalKind(), ClassifierKind()
KIND_OF_STACKS = {("decoder", "encoder"): SEQ2SEQ, ("decoder",): CAUSAL, ("encoder",): CLASSIFIER}


def kind_of_model(model: torch.nn.Module) -> ModelKind:
    """The kind of `model`, read off the stacks its family declaration finds (SurgeryError: no family).

    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> kind_of_model(LlamaForCausalLM(LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
    ...     num_attention_heads=2, vocab_size=32))).name
    'causal'
    """
    from surgery.family_registry import detect_family

    stacks = tuple(sorted(detect_family(model).stack_paths(model)))
    if stacks not in KIND_OF_STACKS:
        raise TrainingSetupError(f"{type(model).__name__} has the stacks {stacks}; the finetune runner trains "
                                 "encoder-decoder, decoder-only and encoder-only models")
    return KIND_OF_STACKS[stacks]


def family_and_kind(config) -> tuple[str, ModelKind]:
    """(family name, kind) of a model of `config`, from its base model built on the meta device."""
    from transformers import AutoModel

    from surgery.family_registry import detect_family

    with torch.device("meta"):
        base = AutoModel.from_config(config)
    return detect_family(base).name, kind_of_model(base)
