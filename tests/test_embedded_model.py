"""The shipped embedded T5 (runners/embedded/model): an ordinary from_pretrained folder, pretrained
for real (its held-out span-corruption loss is far below the same architecture at random init),
and a model adapters can adapt (a short compacter++ run beats the same run on a random-init copy)."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import T5ForConditionalGeneration

import surgery
from runners.embedded import CORPUS_FILE, MODEL_DIR
from runners.finetune.training import set_dropout
from runners.pretrain.corpus import read_documents
from runners.pretrain.data import PretrainData
from runners.pretrain.loop import held_out_loss
from runners.tasks.data import embedded_tokenizer, load_embedded


@pytest.fixture(scope="module")
def pretrained():
    return T5ForConditionalGeneration.from_pretrained(MODEL_DIR).eval()


@pytest.fixture(scope="module")
def random_copy(pretrained):
    torch.manual_seed(0)
    return T5ForConditionalGeneration(copy.deepcopy(pretrained.config)).eval()


def test_the_folder_is_small_and_loads_like_any_hub_model(pretrained):
    size = sum(path.stat().st_size for path in MODEL_DIR.iterdir())
    assert size <= 20_000_000, f"{size:,} bytes"
    assert next(pretrained.parameters()).dtype == torch.float32
    tokenizer = embedded_tokenizer()
    assert pretrained.config.vocab_size == len(tokenizer)
    from transformers import AutoTokenizer

    shipped = AutoTokenizer.from_pretrained(MODEL_DIR)
    text = "mia sold the red lamp to tom ."
    assert shipped(text).input_ids == tokenizer(text).input_ids


def test_held_out_span_corruption_loss_is_far_below_random_init(pretrained, random_copy):
    # Documents from the end of the corpus: the pretraining run held out its last 2 %.
    documents = read_documents([CORPUS_FILE])[-400:]
    data = PretrainData.build(documents, embedded_tokenizer(), chunk_length=114, held_out=0.5)
    from contextlib import nullcontext

    trained = held_out_loss(pretrained, data, seed=3, device="cpu", autocast=nullcontext)
    untrained = held_out_loss(random_copy, data, seed=3, device="cpu", autocast=nullcontext)
    assert untrained > 5.0 and trained < untrained - 3.0, (trained, untrained)


def short_compacter_run(model, steps: int = 40, task_name: str = "embedded-sst2") -> float:
    """The validation score of `task_name` after a few compacter++ steps (fixed seed, same data)."""
    torch.manual_seed(0)
    model = copy.deepcopy(model)
    surgery.apply(model, "compacter++")
    set_dropout(model, 0.0)  # as the embedded protocol trains (runners/finetune/protocol.py)
    tokenizer = embedded_tokenizer()
    splits = load_embedded(task_name)
    from runners.tasks import get_task

    task = get_task(task_name)
    train = [task.to_text(row) for row in splits["train"]]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-2)  # EMBEDDED_LEARNING_RATES
    model.train()
    for step in range(steps):
        start = step * 16 % (len(train) - 15)
        batch = train[start:start + 16]
        inputs = tokenizer([s for s, _ in batch], return_tensors="pt", padding=True)
        labels = tokenizer([t for _, t in batch], return_tensors="pt", padding=True).input_ids
        model(**inputs, labels=labels.masked_fill(labels == 0, -100)).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    rows = splits["validation"][:200]
    inputs = tokenizer([task.to_text(row)[0] for row in rows], return_tensors="pt", padding=True)
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    predictions = tokenizer.batch_decode(output, skip_special_tokens=True)
    return task.summary_score(task.score(predictions, rows))


def test_compacter_adapts_the_pretrained_model_not_a_random_one(pretrained, random_copy):
    # 60 steps of 16 on embedded-stsb (measured 2026-12-01: Pearson/Spearman mean 57.3 on the
    # shipped model, 0.0 on the random copy, which emits no similarity yet).
    adapted = short_compacter_run(pretrained, steps=60, task_name="embedded-stsb")
    random_baseline = short_compacter_run(random_copy, steps=60, task_name="embedded-stsb")
    assert adapted > 45 and adapted > random_baseline + 30, (adapted, random_baseline)
