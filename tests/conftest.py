"""Shared fixtures: tiny random-init T5 models (nothing downloaded)."""

from __future__ import annotations

import copy
import csv
import functools
import json
import os
from pathlib import Path

# Nothing in the suite may reach the real Hub (the runners probe it before a Hub load): offline by
# default, and a closed local port as its address should a test turn offline mode off. Tests of the
# Hub path itself (tests/test_startup_hub.py) set their own environment.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_ENDPOINT", "http://127.0.0.1:9")

# tests/data holds fixtures and the scripts that made them with an earlier version of the code
# (importing one would run it, and rewrite the fixture with today's code): never collected.
collect_ignore_glob = ["data/*"]

import pytest
import torch
from transformers import T5Config, T5ForConditionalGeneration


def tiny_config(variant: str = "v1.0", **overrides) -> T5Config:
    """A small T5 config; "v1.1" means gated-GELU FFN and an untied output layer (T5 v1.1 / mT5)."""
    fields = dict(vocab_size=96, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_decoder_layers=2, num_heads=4,
                  dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, attn_implementation="eager")
    if variant == "v1.1":
        fields.update(feed_forward_proj="gated-gelu", tie_word_embeddings=False)
    fields.update(overrides)
    return T5Config(**fields)


def tiny_model(variant: str = "v1.0", seed: int = 0, **overrides) -> T5ForConditionalGeneration:
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(tiny_config(variant, **overrides)).eval()
    if variant == "v1.1":
        # transformers 5 always ties T5's output layer to the embedding (the config only keeps
        # `tie_word_embeddings=False` as "do not rescale"); v1.1/mT5 checkpoints have their own
        # output layer, so untie it here to cover that architecture.
        model.lm_head.weight = torch.nn.Parameter(torch.randn_like(model.lm_head.weight))
    return model


def t5_base_on_meta() -> T5ForConditionalGeneration:
    """T5-base's architecture (222,903,552 parameters) on the meta device: no memory, no download."""
    config = T5Config(vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12)
    with torch.device("meta"):
        model = T5ForConditionalGeneration(config)
    model.tie_weights()  # transformers 5.0 leaves a model built on the meta device untied; later 5.x tie it
    return model


_T5_BASE_PLANS: dict = {}


def t5_base_plan(recipe):
    """`surgery.plan(t5_base_on_meta(), recipe)`, memoised for the session: a plan on the meta model
    is a pure function of the recipe (~0.4-2.4 s each on T5-base), and the Table 1 and Table 7
    count tests plan the same recipes (the same name, or the same dict) several times. Only for
    tests that read a plan's counts and report; tests of planning itself call surgery.plan."""
    import surgery

    key = recipe if isinstance(recipe, str) else json.dumps(recipe, sort_keys=True)
    if key not in _T5_BASE_PLANS:
        _T5_BASE_PLANS[key] = surgery.plan(_shared_t5_base_on_meta(), recipe)
    return _T5_BASE_PLANS[key]


@functools.cache
def _shared_t5_base_on_meta() -> T5ForConditionalGeneration:
    """One meta T5-base for the memoised plans (planning leaves the model as it was)."""
    return t5_base_on_meta()


def zero_up_projections(model: torch.nn.Module) -> None:
    """Make every inserted bottleneck adapter the identity by zeroing its up-projection's own tensors."""
    touched = 0
    for name, module in model.named_modules():
        if ".spliced." in name and name.endswith(".up"):
            with torch.no_grad():
                for parameter in module.parameters(recurse=False):
                    parameter.zero_()
            touched += 1
    assert touched > 0, "no inserted up-projection found"


def losses_on_a_fixed_mapping(model: torch.nn.Module, learning_rate: float, steps: int) -> list[float]:
    """Train `model`'s trainable parameters with Adam to map one fixed input to one fixed label
    sequence (the same for both rows); returns the loss of every step."""
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(3, 96, (2, 7), generator=generator)
    labels = torch.randint(3, 96, (1, 5), generator=generator).repeat(2, 1)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=learning_rate)
    losses = []
    for _ in range(steps):
        loss = model(input_ids=input_ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread (no OpenMP contention on a shared 2-core machine)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# Words the embedded tokenizer knows, for local task files the runner tests write.
WORDS = "the lamp was good . the kettle is awful . mia loved the phone . the sofa felt dull . this chair was great".split()


def one_line_exit_2(code: int, capsys, *needles: str) -> str:
    """A runner's refusal: exit code 2 and one stderr line `error: ...` holding every needle, no traceback."""
    error = capsys.readouterr().err.strip()
    assert code == 2, error
    assert len(error.splitlines()) == 1 and error.startswith("error: ") and "Traceback" not in error, error
    for needle in needles:
        assert needle in error, (needle, error)
    return error


def run_efficiency(argv: list[str]) -> dict[str, Path]:
    """`python -m runners.efficiency ARGV` in this process, the torch thread count restored after it."""
    from runners import efficiency

    threads = torch.get_num_threads()
    try:
        return efficiency.main(argv)
    finally:
        torch.set_num_threads(threads)


def efficiency_records(csv_path: Path) -> dict[str, dict[str, str]]:
    """The rows of an efficiency.csv by recipe."""
    with csv_path.open(newline="") as handle:
        return {record["recipe"]: record for record in csv.DictReader(handle)}


def rte_rows(count: int, offset: int = 0, varied_lengths: bool = False) -> list[dict]:
    """RTE-format rows (sentence1, sentence2, label); `varied_lengths`: rows of different lengths."""
    rows = []
    for i in range(offset, offset + count):
        first_length, second_length = (3 + i % 5, 2 + i % 3) if varied_lengths else (6, 4)
        rows.append({"sentence1": " ".join(WORDS[(i + j) % len(WORDS)] for j in range(first_length)),
                     "sentence2": " ".join(WORDS[(3 * i + j) % len(WORDS)] for j in range(second_length)),
                     "label": i % 2})
    return rows


def write_rte(folder: Path, train: int = 24, validation: int = 12, varied_lengths: bool = False) -> Path:
    """train.csv and validation.jsonl with RTE's original column names."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "train.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=["sentence1", "sentence2", "label"])
        writer.writeheader()
        writer.writerows(rte_rows(train, 0, varied_lengths))
    (folder / "validation.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rte_rows(validation, 1000, varied_lengths)))
    return folder


@pytest.fixture(params=["v1.0", "v1.1"])
def variant(request) -> str:
    return request.param


@pytest.fixture
def model_pair(variant):
    """(untouched model, deep copy to operate on)."""
    base = tiny_model(variant)
    return base, copy.deepcopy(base)


@pytest.fixture
def batch():
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(2, 96, (3, 9), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 6:] = 0
    input_ids[1, 6:] = 0
    labels = torch.randint(2, 96, (3, 5), generator=generator)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


@pytest.fixture
def jobs_workers_share_imports(monkeypatch):
    """`--jobs` workers forked from one forkserver that imported the runner once for the session.

    The runner starts its workers with "spawn": each one imports torch, transformers and the runner
    afresh (~7 s). A forkserver's workers are also fresh processes that inherit nothing from this
    one (the server is its own interpreter; calls and results are pickled), but its preloaded
    imports are paid once. In-process tests of --jobs results use it; the parent-death test (a
    runner subprocess) and the doctest of runners.finetune.parallel start the runner's own "spawn"
    workers."""
    import types

    import runners.finetune.parallel as parallel

    from processes import forkserver_context

    context = forkserver_context()
    asked = []

    def get_context(method=None):
        asked.append(method)
        return context

    monkeypatch.setattr(parallel, "multiprocessing", types.SimpleNamespace(get_context=get_context))
    yield context
    assert asked == ["spawn"] * len(asked) and asked, asked  # the runner asked for its spawn pool
