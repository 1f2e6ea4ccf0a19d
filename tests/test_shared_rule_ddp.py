"""Compacter's shared rule under DistributedDataParallel (2 CPU processes, gloo): it is one
parameter to DDP, its gradient is all-reduced, and after a step every rank holds the same rule,
equal to a single process trained on both ranks' data."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).parent))

from processes import run_workers  # noqa: E402

RECIPE = {"method": "adapter", "sites": ["after_self_attention", "after_ffn"], "train": ["layer_norms"],
          "options": {"projection": "phm", "factorized": True, "shared_rule": True, "n": 2, "rule_init_std": 0.1}}


def _batches():
    generator = torch.Generator().manual_seed(7)
    inputs = torch.randint(2, 96, (4, 8), generator=generator)
    labels = torch.randint(2, 96, (4, 5), generator=generator)
    return inputs, labels


def _model():
    import surgery
    from conftest import tiny_model

    model = tiny_model(seed=11).train()
    surgery.apply(model, RECIPE)
    return model


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = _model()
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD([p for p in ddp.parameters() if p.requires_grad], lr=0.5)
    inputs, labels = _batches()
    half = slice(2 * rank, 2 * rank + 2)
    ddp(input_ids=inputs[half], labels=labels[half]).loss.backward()
    optimizer.step()
    torch.save({"rule": model.surgery.adapters.default.shared.weight.detach().clone(),
                "tied": all(m.rule_module.weight is model.surgery.adapters.default.shared.weight
                            for _, m in model.named_modules() if hasattr(m, "rule_module"))},
               f"{out_dir}/rank{rank}.pt")
    dist.destroy_process_group()


def test_shared_rule_under_ddp_matches_single_process(tmp_path):
    # A second try, with a fresh rendezvous file, only when both workers are still running after
    # 120 s: once in a full suite (2026-12-02) the gloo workers hung where alone they take seconds.
    # A worker's exception is never retried.
    for attempt in (1, 2):
        folder = tmp_path / f"attempt-{attempt}"
        folder.mkdir()
        try:
            run_workers(_worker, (2, str(folder / "init"), str(folder)), timeout=120.0)  # tests/processes.py
            break
        except pytest.fail.Exception:
            if attempt == 2:
                raise
    ranks = [torch.load(folder / f"rank{r}.pt") for r in range(2)]
    assert all(r["tied"] for r in ranks)
    torch.testing.assert_close(ranks[0]["rule"], ranks[1]["rule"], rtol=0, atol=0)

    # One process, both halves: the mean of the two half-batch losses has the DDP gradient.
    model = _model()
    start = model.surgery.adapters.default.shared.weight.detach().clone()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    inputs, labels = _batches()
    loss = sum(model(input_ids=inputs[h], labels=labels[h]).loss for h in (slice(0, 2), slice(2, 4))) / 2
    loss.backward()
    optimizer.step()
    assert not torch.equal(model.surgery.adapters.default.shared.weight, start)
    torch.testing.assert_close(ranks[0]["rule"], model.surgery.adapters.default.shared.weight.detach(), rtol=1e-5, atol=1e-7)
