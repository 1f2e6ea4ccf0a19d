"""Sharded and data-parallel training with 2 CPU processes (gloo): FSDP2 and FSDP1 through
surgery.shard_model train the adapter a single process trains; save_adapter on the wrapped model
writes it (every tensor, the model's own names and class; also after FSDP2's unshard() and inside
FSDP1's summon_full_params); it loads into a fresh model, giving
the same outputs, and into a freshly sharded one. DDP-wrapped models save and load too."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))

import surgery  # noqa: E402
from surgery.checkpoint import CONFIG_FILE, WEIGHTS_FILE  # noqa: E402
from surgery.naming import canonical_name  # noqa: E402
from processes import run_workers  # noqa: E402

RECIPE = {**surgery.load_recipe("compacter++").source,
          "options": {**surgery.load_recipe("compacter++").options, "n": 2, "rule_init_std": 0.1}}
STEPS = 2


def data():
    generator = torch.Generator().manual_seed(7)
    return torch.randint(2, 96, (4, 8), generator=generator), torch.randint(2, 96, (4, 5), generator=generator)


def fresh_model():
    from conftest import tiny_model

    model = tiny_model(seed=11)
    surgery.apply(model, RECIPE)
    return model


def train(model, rows: slice):
    """STEPS SGD steps on the given rows of every batch (each rank its half; one process all of it)."""
    inputs, labels = data()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model.train()
    for _ in range(STEPS):
        optimizer.zero_grad()
        model(input_ids=inputs[rows], labels=labels[rows]).loss.backward()
        optimizer.step()
    return model.eval()


def outputs(model):
    inputs, labels = data()
    with torch.no_grad():
        return model(input_ids=inputs, labels=labels).logits


def _worker(rank: int, world: int, init_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.manual_seed(0)
    half = slice(2 * rank, 2 * rank + 2)   # equal halves: the mean of the two losses is the full batch's
    results = {}
    for strategy in ("fsdp2", "fsdp1"):
        sharded = train(surgery.shard_model(fresh_model(), strategy), half)
        surgery.save_adapter(sharded, f"{out}/{strategy}")          # every rank; rank 0 writes
        # The states the issue found broken: after FSDP2's unshard(), inside FSDP1's summon_full_params.
        if strategy == "fsdp2":
            sharded.unshard()
            surgery.save_adapter(sharded, f"{out}/fsdp2-unsharded")
            sharded.reshard()
        else:
            from torch.distributed.fsdp import FullyShardedDataParallel

            with FullyShardedDataParallel.summon_full_params(sharded):
                surgery.save_adapter(sharded, f"{out}/fsdp1-summoned")
        # and back into a freshly sharded model (the recipe applied first, then sharded)
        target = surgery.shard_model(fresh_model(), strategy)
        surgery.load_adapter(target, f"{out}/{strategy}")
        results[strategy] = outputs(target)
    # DDP: the wrapper is unwrapped; each rank holds everything, so rank 0 alone saves.
    ddp = torch.nn.parallel.DistributedDataParallel(fresh_model())
    train(ddp, half)
    if rank == 0:
        surgery.save_adapter(ddp, f"{out}/ddp")
    dist.barrier()
    target = torch.nn.parallel.DistributedDataParallel(fresh_model())
    surgery.load_adapter(target, f"{out}/ddp")
    results["ddp"] = outputs(target.module)
    torch.save(results, f"{out}/outputs-rank{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.slow  # about 20 s: two processes start, train and save three times
def test_sharded_and_data_parallel_training_save_and_load(tmp_path):
    run_workers(_worker, (2, str(tmp_path / "init"), str(tmp_path)))  # tests/processes.py

    reference = train(fresh_model(), slice(0, 4))       # one process, the whole batch
    # by the names an adapter checkpoint gives them (without the adapter's name)
    expected = {canonical_name(n, "default"): p.detach() for n, p in reference.named_parameters() if p.requires_grad}
    expected_outputs = outputs(reference)
    untrained = {canonical_name(n, "default"): p.detach() for n, p in fresh_model().named_parameters() if p.requires_grad}
    for strategy in ("fsdp2", "fsdp1", "ddp", "fsdp2-unsharded", "fsdp1-summoned"):
        folder = tmp_path / strategy
        saved = load_file(folder / WEIGHTS_FILE)
        assert saved.keys() == expected.keys(), strategy              # every tensor, under the checkpoint's names
        for name, value in expected.items():
            torch.testing.assert_close(saved[name], value, rtol=0, atol=1e-6, msg=f"{strategy}: {name}")
        assert max((saved[n] - untrained[n]).abs().max().item() for n in saved) > 1e-3   # training moved them
        record = json.loads((folder / CONFIG_FILE).read_text())
        assert record["base"]["model_class"] == "T5ForConditionalGeneration"
        assert record["base"] == surgery.checkpoint.base_fingerprint(fresh_model())

        fresh = fresh_model()
        surgery.load_adapter(fresh, folder)
        torch.testing.assert_close(outputs(fresh), expected_outputs, rtol=0, atol=1e-5, msg=strategy)
        for rank in range(2 if strategy in ("fsdp2", "fsdp1", "ddp") else 0):
            loaded_sharded = torch.load(tmp_path / f"outputs-rank{rank}.pt")[strategy]
            torch.testing.assert_close(loaded_sharded, expected_outputs, rtol=0, atol=1e-5, msg=f"{strategy} rank {rank}")


def test_shard_model_refuses_a_model_without_surgery_and_surgery_refuses_a_wrapped_model():
    from conftest import tiny_model

    with pytest.raises(surgery.SurgeryError, match="apply the recipe .* before sharding"):
        surgery.shard_model(tiny_model())

    class Wrapper(torch.nn.parallel.DistributedDataParallel):   # a DDP wrapper without a process group
        def __init__(self, module):
            torch.nn.Module.__init__(self)
            self.module = module

    with pytest.raises(surgery.SurgeryError, match="the model is wrapped .* apply surgery to the plain model"):
        surgery.apply(Wrapper(tiny_model()), RECIPE)
