"""Data parallelism: 2 CPU processes (torchrun, gloo) train the same parameters as 1 process.

`--batch-size` is the global batch, and each step's loss is normalised by the token count of the
whole global batch, so splitting a batch over processes or accumulation steps changes only the
order of float additions.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from safetensors.torch import load_file

from conftest import write_rte
from runners import finetune
from runners.finetune.batches import global_batches, shard
from runners.finetune.results import RunResult
from surgery.checkpoint import WEIGHTS_FILE

REPO = Path(__file__).resolve().parents[1]
# compacter++ needs d_model / 32 divisible by n = 4; dropout 0: nothing random during training.
TINY = ["d_model=128", "d_kv=32", "d_ff=128", "num_layers=1", "num_heads=4", "dropout_rate=0.0"]
RUN = Path("rte") / "compacter++" / "seed-3"


def arguments(data_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    # 22 examples, global batch 6: batches of 6, 6, 6 and a last one of 4 (uneven shards) per epoch.
    return ["--task", "rte", "--data-dir", str(data_dir), "--init-config", *TINY, "--recipe", "compacter++",
            "--epochs", "2", "--batch-size", "6", "--warmup-steps", "1", "--seed", "3", "--cpu",
            "--output-dir", str(output_dir), "--no-progress", *extra]


def trained_tensors(output_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(output_dir / RUN / "last" / WEIGHTS_FILE)


def assert_close_tensors(found: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], tolerance: float) -> None:
    assert found.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(found[name], expected[name], rtol=0, atol=tolerance, msg=name)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> tuple[Path, Path, dict[str, torch.Tensor]]:
    root = tmp_path_factory.mktemp("one-process")
    data_dir = write_rte(root / "rte", train=22, validation=10, varied_lengths=True)
    assert finetune.main(arguments(data_dir, root / "out")) == 0
    return data_dir, root / "out", trained_tensors(root / "out")


def test_two_processes_match_one_process(one_process, tmp_path):
    data_dir, reference, expected = one_process
    out = tmp_path / "out"
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "runners.finetune", *arguments(data_dir, out)],
        cwd=REPO, env=environment, capture_output=True, text=True, timeout=180,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "2 processes" in completed.stdout  # it really ran data-parallel
    assert completed.stdout.count("=== run 1/1") == 1  # only process 0 prints
    assert_close_tensors(trained_tensors(out), expected, tolerance=1e-5)
    assert RunResult.load(out / RUN / "result.json").test == RunResult.load(reference / RUN / "result.json").test


def test_gradient_accumulation_matches_one_batch(one_process, tmp_path):
    data_dir, _, expected = one_process
    assert finetune.main(arguments(data_dir, tmp_path / "out", "--grad-accum", "2")) == 0
    assert_close_tensors(trained_tensors(tmp_path / "out"), expected, tolerance=1e-6)


def test_the_tolerance_is_far_below_what_training_changes(one_process, tmp_path):
    data_dir, _, expected = one_process
    assert finetune.main(arguments(data_dir, tmp_path / "out", "--stop-after-steps", "1")) == 0
    after_one_step = trained_tensors(tmp_path / "out")
    largest_change = max((after_one_step[n] - expected[n]).abs().max().item() for n in expected)
    assert largest_change > 1e-3


@given(size=st.integers(1, 40), batch_size=st.integers(1, 12), world=st.integers(1, 4), accumulation=st.integers(1, 3))
def test_shards_partition_each_global_batch(size, batch_size, world, accumulation):
    parts = world * accumulation
    assume(batch_size >= parts)  # training refuses a global batch smaller than processes × accumulation
    batches = global_batches(list(range(size)), batch_size, min_size=parts)
    for batch in batches:
        pieces = [micro for rank in range(world) for micro in shard(batch, world, rank, accumulation)]
        assert sorted(i for piece in pieces for i in piece) == batch  # every example exactly once
        assert all(pieces), "every process gets a non-empty micro-batch"
        assert max(map(len, pieces)) - min(map(len, pieces)) <= 1
    kept = [i for batch in batches for i in batch]
    assert kept == list(range(len(kept)))  # the order is kept; only a short tail may be dropped
    assert size - len(kept) < parts


@pytest.fixture
def process_group(tmp_path):
    """A one-process gloo group, as torchrun would have started; destroyed after the test if still up."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield dist
    if dist.is_initialized():
        dist.destroy_process_group()


@pytest.mark.parametrize("ending", ["returns", "raises", "interrupted"])
def test_a_runner_ends_its_process_group_however_it_ends(process_group, ending):
    # A gloo group left to interpreter shutdown once aborted torchrun's rank 1 after its run had finished.
    import signal

    from runners.command import run_command

    def entry():
        if ending == "raises":
            raise ValueError("the run failed")
        if ending == "interrupted":
            raise KeyboardInterrupt
        return 0

    sigint = signal.getsignal(signal.SIGINT)  # an interrupted run_command ignores further Ctrl-C
    try:
        assert process_group.is_initialized()
        with pytest.raises((SystemExit, ValueError)):
            run_command(entry)
        assert not process_group.is_initialized()
    finally:
        signal.signal(signal.SIGINT, sigint)


def test_a_process_group_that_fails_to_end_keeps_the_runs_exit_status(process_group, monkeypatch, capsys):
    from runners.command import run_command

    def broken_teardown(*arguments, **keywords):
        raise RuntimeError("the store went away")

    with monkeypatch.context() as patched:
        patched.setattr(process_group, "destroy_process_group", broken_teardown)
        with pytest.raises(SystemExit) as exited:
            run_command(lambda: 3)
    assert exited.value.code == 3
    assert capsys.readouterr().err.strip() == ("warning: the process group could not be ended cleanly: "
                                               "the store went away")
