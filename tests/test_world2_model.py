"""World 2's pretrained T5 (runners/embedded/world2/model): an ordinary from_pretrained folder of at
most 20 MB, pretrained for real (its held-out span-corruption loss is far below the same architecture
at random init), and carrying what world2-sst2 needs (a short compacter++ run on that task, whose
validation words its training split never uses, beats the same run on a random-init copy)."""

from __future__ import annotations

import copy
from contextlib import nullcontext

import pytest
import torch
from transformers import AutoTokenizer, T5ForConditionalGeneration

import surgery
from runners.embedded.world2 import CORPUS_FILE, MODEL_DIR, T5_ARCHITECTURE, TOKENIZER_DIR
from runners.embedded.world2.tasks import WORLD2_TASKS
from runners.finetune.training import set_dropout
from runners.pretrain.corpus import read_documents
from runners.pretrain.data import PretrainData
from runners.pretrain.loop import held_out_loss
from runners.tasks.data import load_task_splits


@pytest.fixture(scope="module")
def pretrained():
    return T5ForConditionalGeneration.from_pretrained(MODEL_DIR).eval()


@pytest.fixture(scope="module")
def random_copy(pretrained):
    torch.manual_seed(0)
    return T5ForConditionalGeneration(copy.deepcopy(pretrained.config)).eval()


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(TOKENIZER_DIR)


def test_the_folder_is_small_and_is_world_2s_architecture_and_tokenizer(pretrained, tokenizer):
    size = (MODEL_DIR / "model.safetensors").stat().st_size  # issue 29: at most 20 MB of safetensors
    assert size <= 20_000_000, f"{size:,} bytes"
    assert next(pretrained.parameters()).dtype == torch.float32
    shapes = {key: value for key, value in T5_ARCHITECTURE.items() if key != "dropout_rate"}
    assert {key: getattr(pretrained.config, key) for key in shapes} == shapes
    assert pretrained.config.dropout_rate == 0.1  # pretrained without dropout; saved with the fine-tuning rate
    assert pretrained.config.vocab_size == len(tokenizer)
    shipped = AutoTokenizer.from_pretrained(MODEL_DIR)
    text = "the gift that ben chose was not good ."
    assert shipped(text).input_ids == tokenizer(text).input_ids


def test_held_out_span_corruption_loss_is_far_below_random_init(pretrained, random_copy, tokenizer):
    # Documents from the end of the corpus: the pretraining run held out its last 2 % (1,200 documents).
    documents = read_documents([CORPUS_FILE])[-300:]
    data = PretrainData.build(documents, tokenizer, chunk_length=114, held_out=0.5)
    trained = held_out_loss(pretrained, data, seed=3, device="cpu", autocast=nullcontext)
    untrained = held_out_loss(random_copy, data, seed=3, device="cpu", autocast=nullcontext)
    assert untrained > 6.0 and trained < untrained - 4.0, (trained, untrained)


def short_compacter_run(model, tokenizer, steps: int, batch_size: int = 32) -> tuple[float, float]:
    """(validation accuracy on world2-sst2, share of predictions that are no label) after `steps`
    compacter++ steps at the embedded protocol's rate (fixed seed, the same batches for any model)."""
    torch.manual_seed(0)
    model = copy.deepcopy(model)
    surgery.apply(model, "compacter++")
    set_dropout(model, 0.0)
    task = WORLD2_TASKS["world2-sst2"]
    splits = load_task_splits(task)
    train = [task.to_text(row) for row in splits["train"]]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-2)
    model.train()
    for step in range(steps):
        start = step * batch_size % (len(train) - batch_size + 1)
        batch = train[start:start + batch_size]
        inputs = tokenizer([s for s, _ in batch], return_tensors="pt", padding=True)
        labels = tokenizer([t for _, t in batch], return_tensors="pt", padding=True).input_ids
        model(**inputs, labels=labels.masked_fill(labels == tokenizer.pad_token_id, -100)).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    rows = splits["validation"]
    inputs = tokenizer([task.to_text(row)[0] for row in rows], return_tensors="pt", padding=True)
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=8, do_sample=False)  # "<rationale> ; <label>"
    predictions = tokenizer.batch_decode(output, skip_special_tokens=True)
    invalid = sum(task.answer(p) not in task.labels for p in predictions) / len(predictions)
    return task.summary_score(task.score(predictions, rows)), invalid


@pytest.mark.slow
def test_compacter_reads_held_out_words_only_through_pretraining(pretrained, random_copy, tokenizer):
    # The validation rows' evaluative words are never in the training split: only the corpus says
    # what they mean. The model writes the word's gloss, then the label ("awful ; negative"). 150
    # steps of 32 (2.4 epochs), measured 2026-12-03 on one thread with the checkpoint pretrained on
    # multi-word explain: pairs: accuracy 80.2 on the shipped model, 51.2 on the random copy, no
    # invalid output from either (100 steps: 66.2 against 50.8, too near the threshold; the
    # checkpoint before it had 80.8 against 50.0 at 100 steps).
    adapted, adapted_invalid = short_compacter_run(pretrained, tokenizer, steps=150)
    random_baseline, random_invalid = short_compacter_run(random_copy, tokenizer, steps=150)
    assert adapted_invalid == 0 and random_invalid == 0, (adapted_invalid, random_invalid)
    assert adapted > 65 and adapted > random_baseline + 15, (adapted, random_baseline)
