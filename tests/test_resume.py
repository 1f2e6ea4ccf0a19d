"""Exact resume: a run interrupted after K steps and resumed ends with the uninterrupted run's parameters.

The tiny model keeps dropout on (0.1), so the resumed run only matches if the RNG states were
restored; the data order, optimizer moments, schedule position, best-checkpoint bookkeeping and
the JSON-lines log must all continue where they stopped.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import runners.finetune.training
from conftest import write_rte
from runners import finetune
from runners.finetune.jsonl_log import read_jsonl
from runners.finetune.results import RunResult
from surgery.checkpoint import WEIGHTS_FILE

TINY = ["d_model=32", "d_kv=8", "d_ff=64", "num_layers=1", "num_heads=4", "dropout_rate=0.1"]
RUN = Path("rte") / "adapter" / "seed-7"


def arguments(data_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    # 24 examples, global batch 8: 3 steps per epoch, 2 epochs.
    return ["--task", "rte", "--data-dir", str(data_dir), "--init-config", *TINY, "--recipe", "adapter",
            "--epochs", "2", "--batch-size", "8", "--lr", "1e-2", "--warmup-steps", "2", "--seed", "7",
            "--log-every", "1", "--output-dir", str(output_dir), "--no-progress", *extra]


def adapter_tensors(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / WEIGHTS_FILE)


def log_without_timings(path: Path) -> list[dict]:
    return [{k: v for k, v in record.items() if "seconds" not in k} for record in read_jsonl(path)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("uninterrupted")
    data_dir = write_rte(root / "rte")
    assert finetune.main(arguments(data_dir, root / "out")) == 0
    return data_dir, root / "out"


def assert_same_run(resumed: Path, reference: Path) -> None:
    final, expected = adapter_tensors(resumed / RUN / "last"), adapter_tensors(reference / RUN / "last")
    assert final.keys() == expected.keys()
    for name in expected:
        assert torch.equal(final[name], expected[name]), name
    resumed_result, expected_result = RunResult.load(resumed / RUN / "result.json"), RunResult.load(reference / RUN / "result.json")
    assert (resumed_result.test, resumed_result.validation, resumed_result.best_epoch) == \
        (expected_result.test, expected_result.validation, expected_result.best_epoch)
    assert log_without_timings(resumed / RUN / "log.jsonl") == log_without_timings(reference / RUN / "log.jsonl")


@pytest.mark.parametrize("stop_after", [2, 3, 4], ids=["mid-epoch", "epoch-end-before-eval", "second-epoch"])
def test_stop_after_steps_then_resume_equals_uninterrupted(uninterrupted, tmp_path, stop_after, capsys):
    data_dir, reference = uninterrupted
    out = tmp_path / "out"
    assert finetune.main(arguments(data_dir, out, "--stop-after-steps", str(stop_after))) == 0
    assert "--resume" in capsys.readouterr().out
    state = torch.load(out / RUN / "last" / "training_state.pt", weights_only=False)
    assert state["progress"]["global_step"] == stop_after
    assert not (out / RUN / "result.json").exists()
    # A parameter really moved by step K: the interrupted checkpoint differs from the final one.
    assert any(not torch.equal(a, b) for a, b in zip(adapter_tensors(out / RUN / "last").values(),
                                                       adapter_tensors(reference / RUN / "last").values()))

    assert finetune.main(["--resume", str(out), "--no-progress"]) == 0
    assert_same_run(out, reference)


def test_interrupt_signal_saves_at_a_step_boundary_and_resumes(uninterrupted, tmp_path, monkeypatch):
    data_dir, reference = uninterrupted
    out = tmp_path / "out"
    original, calls = runners.finetune.training._token_loss_sum, {"count": 0}

    def send_sigint_during_the_second_step(*args, **kwargs):
        calls["count"] += 1
        if calls["count"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of step 2
        return original(*args, **kwargs)

    monkeypatch.setattr(runners.finetune.training, "_token_loss_sum", send_sigint_during_the_second_step)
    assert finetune.main(arguments(data_dir, out)) == 130
    monkeypatch.setattr(runners.finetune.training, "_token_loss_sum", original)
    state = torch.load(out / RUN / "last" / "training_state.pt", weights_only=False)
    assert state["progress"]["global_step"] == 2  # step 2 was finished, then training stopped

    assert finetune.main(["--resume", str(out), "--no-progress"]) == 0
    assert_same_run(out, reference)


def test_resume_refuses_settings_that_change_the_result(uninterrupted, tmp_path, capsys):
    data_dir, _ = uninterrupted
    out = tmp_path / "out"
    assert finetune.main(arguments(data_dir, out, "--stop-after-steps", "1")) == 0
    assert finetune.main(["--resume", str(out), "--lr", "0.5"]) == 2
    assert "--lr" in capsys.readouterr().err
    assert finetune.main(["--resume", str(tmp_path / "nowhere")]) == 2


def test_resume_of_a_finished_invocation_reuses_its_results(uninterrupted, capsys):
    _, reference = uninterrupted
    before = adapter_tensors(reference / RUN / "last")
    assert finetune.main(["--resume", str(reference), "--no-progress"]) == 0
    assert "finished earlier" in capsys.readouterr().out
    after = adapter_tensors(reference / RUN / "last")
    assert all(torch.equal(before[n], after[n]) for n in before)
