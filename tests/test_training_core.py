"""The training core both runners share (runners.training): a step refuses a non-finite loss or
gradient norm BEFORE the optimizer touches anything, in fine-tuning and in pretraining alike, and
a finite step is the paper's AdamW on the clipped gradient (checked against torch's AdamW run on a
copy by hand)."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import runners.finetune.training
import runners.pretrain.loop
from runners.pretrain.cli import build_parser
from runners.pretrain.invocation import prepare_run
from runners.training.checkpoint import CheckpointFolder
from runners.training.errors import NonFiniteLoss
from runners.training.optim import make_optimizer, make_scheduler
from runners.training.step import finish_step

from test_pretrain import corpus, tiny_args  # noqa: F401  (the module-scoped corpus fixture)


class OneProcess:
    """What finish_step needs of an accelerate.Accelerator, for one process without a grad scaler."""

    num_processes, scaler = 1, None

    def clip_grad_norm_(self, parameters, max_norm):
        return nn.utils.clip_grad_norm_(parameters, max_norm)


def _setup(gradient):
    weight = nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    weight.grad = torch.tensor(gradient)
    optimizer = make_optimizer([weight], 0.1)
    scheduler = make_scheduler(optimizer, warmup_steps=0, total_steps=10)
    return weight, optimizer, scheduler


@pytest.mark.parametrize("loss, gradient, named", [
    (float("nan"), [0.1, 0.2, 0.3], "nan"),
    (float("inf"), [0.1, 0.2, 0.3], "inf"),
    (1.0, [0.1, float("inf"), 0.3], "norm inf"),
    (1.0, [float("nan"), 0.2, 0.3], "norm nan"),
])
def test_a_non_finite_step_changes_nothing(loss, gradient, named):
    weight, optimizer, scheduler = _setup(gradient)
    before = weight.detach().clone()
    with pytest.raises(NonFiniteLoss, match=named):
        finish_step(OneProcess(), torch.tensor(loss, dtype=torch.float64), False, [weight], optimizer, scheduler, 1.0,
                    describe=lambda loss, norm: f"loss {loss} norm {norm}")
    assert torch.equal(weight.detach(), before)
    assert optimizer.state == {} and scheduler.last_epoch == 0


def test_a_finite_step_is_adamw_on_the_clipped_gradient():
    gradient = [3.0, 4.0, 12.0]                     # norm 13: clipped to norm 1
    weight, optimizer, scheduler = _setup(gradient)
    reference = nn.Parameter(weight.detach().clone())
    reference.grad = torch.tensor(gradient) / 13.0
    torch.optim.AdamW([reference], lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0).step()
    result = finish_step(OneProcess(), torch.tensor(2.5, dtype=torch.float64), True, [weight], optimizer, scheduler,
                         1.0, describe=str)
    assert math.isclose(result.grad_norm, 13.0, rel_tol=1e-6)
    assert result.loss_sum == 2.5 and result.stop_requested
    torch.testing.assert_close(weight.detach(), reference.detach())
    assert weight.grad is None and scheduler.last_epoch == 1


def _nan_on_call(module, name, monkeypatch, call):
    """Make the `call`-th training-mode call of module.name (a loss function taking the model first) NaN."""
    original, calls = getattr(module, name), {"count": 0}

    def poisoned(model, *args, **kwargs):
        result = original(model, *args, **kwargs)
        calls["count"] += model.training          # the held-out loss (eval mode) does not count
        if not model.training or calls["count"] != call:
            return result
        return (result[0] * float("nan"), *result[1:]) if isinstance(result, tuple) else result * float("nan")

    monkeypatch.setattr(module, name, poisoned)


def test_pretraining_stops_before_the_update_and_keeps_the_last_good_checkpoint(corpus, tmp_path, monkeypatch):  # noqa: F811
    """NaN loss at step 3 with a checkpoint every step: the model in memory is still step 2's."""
    out = tmp_path / "run"
    run = prepare_run(build_parser().parse_args(tiny_args(corpus, out, "--save-every", "1")))
    _nan_on_call(runners.pretrain.loop, "_loss_sum", monkeypatch, call=3)   # one batch per step: call 3 = step 3
    with pytest.raises(NonFiniteLoss, match="step 3: the loss nan is not finite; the step was not taken"):
        runners.pretrain.loop.pretrain(run.model, run.tokenizer, run.data, run.config)
    last = CheckpointFolder(out / "last", runners.pretrain.loop.FORMAT)
    assert last.read_state()["step"] == 2
    saved = load_file(out / "last" / "model.safetensors")
    in_memory = run.model.state_dict()
    assert saved and all(torch.equal(in_memory[name], tensor) for name, tensor in saved.items())


def test_pretraining_command_line_says_it_in_one_line(corpus, tmp_path, monkeypatch, capsys):  # noqa: F811
    _nan_on_call(runners.pretrain.loop, "_loss_sum", monkeypatch, call=1)
    assert runners.pretrain.main(tiny_args(corpus, tmp_path / "run")) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == ["error: step 1: the loss nan is not finite; the step was not taken and no checkpoint was "
                     "written before it (lower --lr?)"]


def test_fine_tuning_stops_before_the_first_update(tmp_path, monkeypatch):
    import surgery
    from transformers import T5Config, T5ForConditionalGeneration

    from runners.tasks import get_task
    from runners.tasks.data import embedded_tokenizer, load_embedded

    tokenizer = embedded_tokenizer()
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=1,
                                                num_heads=4, decoder_start_token_id=0))
    surgery.apply(model, "adapter")
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    splits = {name: rows[:16] for name, rows in load_embedded().items()}
    config = runners.finetune.training.TrainConfig(output_dir=tmp_path, epochs=1, batch_size=8, warmup_steps=0,
                                                   learning_rate=3e-3, progress_bars=False, print_epochs=False)
    _nan_on_call(runners.finetune.training, "_token_loss_sum", monkeypatch, call=1)
    with pytest.raises(NonFiniteLoss, match="non-finite training loss nan at step 1 .*the step was not taken"):
        runners.finetune.training.train(model, tokenizer, get_task("embedded-sst2"), splits, config)
    assert all(torch.equal(p.detach(), before[name]) for name, p in model.named_parameters())
    assert not (tmp_path / "last").exists()


@pytest.mark.parametrize("warmup, total", [(0, 7), (3, 10), (5, 5), (4, 100)])
def test_the_schedule_is_transformers_linear_schedule_and_resumes_from_its_state(warmup, total):
    # make_scheduler is written out (importing transformers.optimization pulls in PEFT and
    # bitsandbytes where installed); transformers' own schedule is the reference, step by step,
    # and a state saved from transformers' scheduler (checkpoints of earlier versions) resumes ours.
    from transformers import get_linear_schedule_with_warmup

    def pair():
        weight = nn.Parameter(torch.zeros(1))
        return make_optimizer([weight], 0.1), weight

    ours_optimizer, _ = pair()
    theirs_optimizer, _ = pair()
    ours = make_scheduler(ours_optimizer, warmup, total)
    theirs = get_linear_schedule_with_warmup(theirs_optimizer, warmup, total)
    for step in range(total + 2):
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), abs=1e-15), step
        ours_optimizer.step(), theirs_optimizer.step()
        ours.step(), theirs.step()
        if step == total // 2:
            resumed_optimizer, _ = pair()
            resumed = make_scheduler(resumed_optimizer, warmup, total)
            resumed.load_state_dict(theirs.state_dict())
            assert resumed.last_epoch == theirs.last_epoch
            assert resumed.get_last_lr() == pytest.approx(theirs.get_last_lr(), abs=1e-15)
            resumed_optimizer.step()
            resumed.step()   # and it goes on with transformers' factor for the next step
            assert resumed.get_last_lr()[0] == pytest.approx(
                0.1 * theirs.lr_lambdas[0](theirs.last_epoch + 1), abs=1e-15)


def test_set_seed_seeds_what_transformers_set_seed_seeds():
    # Runs seed with accelerate's set_seed, not transformers' (whose import pulls in PEFT and
    # bitsandbytes where installed): after either, every generator draws the same numbers.
    import random

    import numpy as np
    from transformers import set_seed as transformers_set_seed

    from accelerate.utils import set_seed

    def draws():
        return random.random(), float(np.random.rand()), torch.rand(3).tolist(), torch.randint(0, 10**6, (2,)).tolist()

    for seed in (0, 42, 2**31 - 1):
        transformers_set_seed(seed)
        expected = draws()
        set_seed(seed)
        assert draws() == expected
        set_seed(seed + 1)
        assert draws() != expected
