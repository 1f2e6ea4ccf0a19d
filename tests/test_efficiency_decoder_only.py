"""The efficiency runner on a decoder-only shape (``--config llama-tiny``; not timed: rows, counts, the batch)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import surgery
from conftest import efficiency_records, run_efficiency
from runners import efficiency


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("efficiency-llama") / "out"
    argv = ["--config", "llama-tiny", "--batch-size", "2", "--source-length", "12", "--target-length", "4",
            "--recipes", "full-finetune", "compacter++", "--steps", "1", "--repeats", "1", "--warmup", "1",
            "--large-apply", "none", "--output-dir", str(out)]
    return run_efficiency(argv)


@pytest.fixture(scope="module")
def records(run) -> dict[str, dict[str, str]]:
    return efficiency_records(run["csv"])


def test_every_row_is_measured_on_the_llama_shape(run, records):
    assert list(records) == ["full-finetune", "compacter++", "floor", "traced-identity"]
    for name, record in records.items():
        assert record["error"] == "" and float(record["step_ms"]) > 0 and float(record["peak_memory_mib"]) > 0, name
    text = run["markdown"].read_text()
    assert "llama-tiny config" in text and "Llama (decoder only), d_model 128" in text
    assert "compacter++ step time ÷ floor" in text


def test_the_rows_train_what_they_should_on_llama(records):
    shape = efficiency.LLAMA_CONFIGS["llama-tiny"]
    # The floor trains Llama's RMSNorm weights: two per layer and the final one, d_model each.
    assert int(records["floor"]["trainable_params"]) == shape["hidden_size"] * (2 * shape["num_hidden_layers"] + 1)
    model = efficiency.build_base_model("llama-tiny", torch.device("cpu"), torch.float32, seed=0)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert int(records["compacter++"]["trainable_params"]) == surgery.report(surgery.apply(model, "compacter++")).trainable


def test_the_decoder_only_batch_is_scored_on_the_target_alone():
    """The model's loss on the batch is the mean cross-entropy of the target tokens, written out here."""
    model = efficiency.build_base_model("llama-tiny", torch.device("cpu"), torch.float32, seed=0).eval()
    batch = efficiency.make_batch(model.config.vocab_size, 2, 6, 3, torch.device("cpu"), seed=1, decoder_only=True)
    assert torch.equal(batch["input_ids"][:, 6:], batch["labels"][:, 6:])
    with torch.no_grad():
        loss = model(**batch).loss
        logits = model(input_ids=batch["input_ids"]).logits
    targets = batch["input_ids"][:, 6:]
    expected = F.cross_entropy(logits[:, 5:8].reshape(-1, logits.shape[-1]), targets.reshape(-1))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
