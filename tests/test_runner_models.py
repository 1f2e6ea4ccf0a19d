"""runners.finetune on every family's seq2seq class (a local mT5 / UMT5 / LongT5 folder through
--model), and --gradient-checkpointing (same training, activations recomputed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file

from conftest import write_rte
from runners import finetune
from runners.tasks.data import embedded_tokenizer
from surgery.checkpoint import WEIGHTS_FILE

TINY = {"d_model": 128, "d_kv": 16, "d_ff": 64, "num_layers": 1, "num_decoder_layers": 1, "num_heads": 2,
        "dropout_rate": 0.0}


def run_arguments(data_dir: Path, out: Path, *extra: str) -> list[str]:
    return ["--task", "rte", "--data-dir", str(data_dir), "--recipe", "compacter++", "--epochs", "1", "--batch-size", "8",
            "--warmup-steps", "0", "--max-train", "16", "--output-dir", str(out), "--no-progress", "--cpu", *extra]


@pytest.mark.parametrize("family", ["MT5", "UMT5", "LongT5"])
def test_the_runner_trains_a_local_checkpoint_of_each_family(family, tmp_path, capsys):
    tokenizer = embedded_tokenizer()
    config = getattr(transformers, f"{family}Config")(vocab_size=len(tokenizer), pad_token_id=0, eos_token_id=1,
                                                      decoder_start_token_id=0, **TINY)
    torch.manual_seed(0)
    getattr(transformers, f"{family}ForConditionalGeneration")(config).save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    out = tmp_path / "out"
    assert finetune.main(run_arguments(write_rte(tmp_path / "rte"), out, "--model", str(tmp_path / "model"))) == 0
    printed = capsys.readouterr().out
    assert f"model: {tmp_path / 'model'}" in printed
    best = out / "rte" / "compacter++" / "seed-42" / "best"
    tensors = load_file(best / WEIGHTS_FILE)
    assert "surgery.shared.weight" in tensors and any(".spliced.after_ffn." in name for name in tensors)
    assert f"for {family}ForConditionalGeneration" in (best / "README.md").read_text()


def test_gradient_checkpointing_trains_the_same_adapter(tmp_path, monkeypatch):
    data_dir = write_rte(tmp_path / "rte")
    tiny = ["--init-config", "d_model=128", "d_kv=32", "d_ff=64", "num_layers=1", "num_heads=4", "dropout_rate=0.0"]
    recomputed = []
    import transformers.modeling_utils as modeling_utils

    original = modeling_utils.checkpoint

    def counting_checkpoint(function, *args, **kwargs):   # what every checkpointed block calls
        recomputed.append(kwargs.get("use_reentrant"))
        return original(function, *args, **kwargs)

    monkeypatch.setattr(modeling_utils, "checkpoint", counting_checkpoint)
    assert finetune.main(run_arguments(data_dir, tmp_path / "plain", *tiny)) == 0
    assert not recomputed
    assert finetune.main(run_arguments(data_dir, tmp_path / "checkpointed", *tiny, "--gradient-checkpointing")) == 0
    assert recomputed and set(recomputed) == {False}     # every block of every step, non-reentrant
    run = Path("rte") / "compacter++" / "seed-42" / "last" / WEIGHTS_FILE
    plain, checkpointed = load_file(tmp_path / "plain" / run), load_file(tmp_path / "checkpointed" / run)
    assert plain.keys() == checkpointed.keys()
    # Checkpointing recomputes the same forward (the loss is bit-equal) but its backward's gradients differ
    # from the plain ones by float32 rounding (≤3e-8, ~1e-7 of each tensor's largest gradient). Adam divides
    # each gradient by its own magnitude, so that rounding moves an element by lr·δ/|g|: negligible in
    # general, but up to a few 1e-6 for the odd element whose gradient is itself tiny (a down.s entry with
    # |g| ~ 3e-7 moved 4e-6 on an AMD EPYC AVX2 CPU). Hence: all but a handful of the 1,752 trained numbers
    # agree to 1e-6, and every one to 1 % of one step (lr 3e-3, the recipe's, 2 steps). Checkpointing that
    # lost or changed a gradient moves elements by whole steps (~lr), far outside both.
    lr = 3e-3
    total = sum(t.numel() for t in plain.values())
    off = sum(int(((checkpointed[n] - plain[n]).abs() > 1e-6).sum()) for n in plain)
    assert off <= total // 100, f"{off} of {total} trained numbers differ by more than 1e-6"
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], rtol=0, atol=0.01 * lr, msg=name)


def test_no_progress_also_silences_the_loading_bar_of_transformers(tmp_path, capsys):
    """The shipped model is loaded with from_pretrained, which draws transformers' "Loading weights" bar;
    --no-progress turns it off too (it filled every --jobs run's console log)."""
    from transformers.utils import logging

    from runners.finetune.cli import main

    logging.enable_progress_bar()  # as in a fresh process, whatever ran before in this one
    try:
        assert main(["--task", "world2-sst2", "--max-train", "8", "--epochs", "1", "--stop-after-steps", "1",
                     "--no-progress", "--output-dir", str(tmp_path / "out")]) == 0
        assert "Loading weights" not in capsys.readouterr().err
    finally:
        logging.enable_progress_bar()
