"""--recipe peft-lora: Hugging Face PEFT's own LoRA trained by runners.finetune beside the recipes.

The counts are checked against LoRA's closed form computed from the config (not from PEFT); the
base is compared bit for bit before and after training; the runner's table, result files and
resume are the recipes' own; a missing PEFT or a bad --lora-rank is one line before any data.
"""

from __future__ import annotations

import builtins
import csv
import importlib.metadata
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from safetensors.torch import load_file

from conftest import one_line_exit_2, t5_base_on_meta, t5_base_plan, write_rte
from runners import finetune
from runners.errors import UsageError
from runners.finetune import arguments, run
from runners.finetune.library_baselines import DEFAULT_LORA_RANK, PEFT_WEIGHTS, apply_baseline, baseline_mapping
from runners.finetune.model import build_model, parse_init_overrides
from runners.finetune.jsonl_log import read_jsonl
from runners.finetune.results import RunResult
from runners.finetune.training import TrainConfig, train
from runners.predict.cli import find_adapter
from runners.tasks import get_task
from runners.tasks.data import embedded_tokenizer, load_embedded

HAS_PEFT = importlib.util.find_spec("peft") is not None
needs_peft = pytest.mark.skipif(not HAS_PEFT, reason="the compare extra: pip install -e '.[compare]' (setup.sh does)")
VERSION = importlib.metadata.version("peft") if HAS_PEFT else None
# d_model 32 and heads·d_kv 4·6 = 24 differ, and a decoder block has two attentions to the encoder's one, so a
# count that mixed up the sizes or the stacks would not match.
TINY = ["d_model=32", "d_kv=6", "d_ff=64", "num_layers=1", "num_heads=4"]


def lora_closed_form(config, rank: int) -> int:
    """LoRA on q and v of every attention: r·(in + out) per projection (A is r × in, B is out × r).

    The encoder has one attention per block (self), the decoder two (self, cross); q and v map
    d_model → heads·d_kv.
    """
    inner = config.num_heads * config.d_kv
    attentions = config.num_layers + 2 * config.num_decoder_layers
    return attentions * 2 * rank * (config.d_model + inner)


def peft_lora(rank: int) -> dict:
    return baseline_mapping("peft-lora", {"lora_rank": rank}, version=VERSION)


def tiny_base(seed: int = 0):
    return build_model(None, embedded_tokenizer(), parse_init_overrides(TINY), seed=seed)


@needs_peft
@pytest.mark.parametrize("rank", [1, 3])
def test_trained_parameters_are_the_closed_form(rank):
    model = tiny_base()
    base_parameters = sum(p.numel() for p in model.parameters())
    expected = lora_closed_form(model.config, rank)
    model, report = apply_baseline(model, peft_lora(rank), dropout=0.0)
    trained = [name for name, p in model.named_parameters() if p.requires_grad]
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected == report.trainable
    assert report.percent == pytest.approx(100 * expected / base_parameters)
    assert trained and all(".lora_A." in name or ".lora_B." in name for name in trained)
    assert {name.split(".lora_")[0].rsplit(".", 1)[-1] for name in trained} == {"q", "v"}


@needs_peft
def test_the_default_rank_is_about_compacter_plus_plus_on_t5_base():
    model = t5_base_on_meta()
    expected = lora_closed_form(model.config, DEFAULT_LORA_RANK)
    _, report = apply_baseline(model, peft_lora(DEFAULT_LORA_RANK), dropout=0.1)
    compacter = t5_base_plan("compacter++").report.trainable
    assert report.trainable == expected == 110_592 and report.base_parameters == 222_903_552
    assert compacter == 104_704 and abs(report.trainable - compacter) / compacter < 0.06


@needs_peft
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")  # PEFT 0.21 on transformers 5.2x
def test_training_moves_lora_only_and_the_saved_files_are_peft_s(tmp_path):
    model = tiny_base(seed=3)
    base_before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    model, _ = apply_baseline(model, peft_lora(2), dropout=0.0)
    lora_before = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    splits = {name: rows[:16] for name, rows in load_embedded().items()}
    config = TrainConfig(output_dir=tmp_path, epochs=1, batch_size=8, warmup_steps=0, learning_rate=3e-2,
                         progress_bars=False, print_epochs=False)
    outcome = train(model, embedded_tokenizer(), get_task("embedded-sst2"), splits, config)
    assert outcome.completed and outcome.progress.global_step == 2

    after = model.state_dict()
    base_after = {name.replace(".base_layer.", "."): tensor for name, tensor in after.items() if ".lora_" not in name}
    assert base_after.keys() == base_before.keys()
    for name, tensor in base_before.items():
        assert torch.equal(base_after[name], tensor), name
    lora_after = dict(model.named_parameters())
    assert all(not torch.equal(lora_after[name], tensor) for name, tensor in lora_before.items())

    # best/ is PEFT's own format: PeftModel.from_pretrained on a fresh base gets the same tensors.
    saved = load_file(tmp_path / "best" / PEFT_WEIGHTS)
    assert len(saved) == len(lora_before)
    import peft

    reloaded = peft.PeftModel.from_pretrained(tiny_base(seed=3), tmp_path / "best")
    reloaded_lora = {name.removeprefix("base_model.model.").replace(".default", ""): p
                     for name, p in reloaded.named_parameters() if ".lora_" in name}
    assert len(reloaded_lora) == len(lora_before)
    for name, tensor in reloaded_lora.items():
        assert torch.equal(tensor, lora_after[name.replace(".weight", ".default.weight")]), name


def runner_arguments(data_dir: Path, output_dir: Path, *extra: str, recipe: str = "adapter,peft-lora") -> list[str]:
    # 24 examples, global batch 8: 3 steps an epoch; the model's dropout (0.1) is LoRA's too.
    return ["--task", "rte", "--data-dir", str(data_dir), "--init-config", *TINY, "--recipe", recipe,
            "--lora-rank", "2", "--epochs", "2", "--batch-size", "8", "--lr", "1e-2", "--warmup-steps", "2",
            "--seed", "7", "--output-dir", str(output_dir), "--no-progress", *extra]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("peft-lora")
    data_dir = write_rte(root / "rte")
    assert finetune.main(runner_arguments(data_dir, root / "out")) == 0
    return data_dir, root / "out"


@needs_peft
def test_the_runner_gives_peft_lora_a_row_like_a_recipe_s(uninterrupted, capsys):
    _, out = uninterrupted
    label = f"peft-lora (PEFT {VERSION}, r=2)"
    expected = lora_closed_form(tiny_base().config, 2)
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [(row["recipe"], row["task"], row["metric"]) for row in rows] == [
        ("adapter", "rte", "accuracy"), (label, "rte", "accuracy")]
    assert int(rows[1]["trainable_parameters"]) == expected
    assert f"| {label} | {expected:,} (" in (out / "results.md").read_text()
    run_dir = out / "rte" / "peft-lora" / "seed-7"
    result = RunResult.load(run_dir / "result.json")
    assert (result.recipe, result.trainable_parameters, result.epochs) == (label, expected, 2)
    assert float(rows[1]["mean"]) == pytest.approx(result.test["accuracy"])
    assert [r["epoch"] for r in read_jsonl(run_dir / "log.jsonl") if r["event"] == "eval"] == [1, 2]
    assert (run_dir / "best" / "adapter_config.json").is_file() and (run_dir / "test_predictions.jsonl").is_file()

    with pytest.raises(UsageError, match="PeftModel.from_pretrained"):  # runners.predict loads our adapters only
        find_adapter(run_dir)


@needs_peft
def test_peft_lora_stopped_mid_epoch_resumes_exactly(uninterrupted, tmp_path, capsys):
    data_dir, reference = uninterrupted
    out, run_dir = tmp_path / "out", Path("rte") / "peft-lora" / "seed-7"
    assert finetune.main(runner_arguments(data_dir, out, "--stop-after-steps", "4", recipe="peft-lora")) == 0
    stopped = load_file(out / run_dir / "last" / PEFT_WEIGHTS)
    final = load_file(reference / run_dir / "last" / PEFT_WEIGHTS)
    assert any(not torch.equal(stopped[name], final[name]) for name in final)  # step 4 of 6: not there yet
    assert finetune.main(["--resume", str(out), "--no-progress"]) == 0
    resumed = load_file(out / run_dir / "last" / PEFT_WEIGHTS)
    assert resumed.keys() == final.keys() and all(torch.equal(resumed[name], final[name]) for name in final)
    result, expected = RunResult.load(out / run_dir / "result.json"), RunResult.load(reference / run_dir / "result.json")
    assert (result.test, result.validation, result.best_epoch) == (expected.test, expected.validation, expected.best_epoch)


def test_missing_peft_is_one_line_before_any_data(tmp_path, monkeypatch, capsys):
    def no_data(*args, **kwargs):
        raise AssertionError("data was read")

    monkeypatch.setattr(run, "load_data", no_data)
    monkeypatch.setattr(run, "resolve_tasks", no_data)
    monkeypatch.setitem(sys.modules, "peft", None)  # `import peft` raises ImportError, find_spec finds nothing
    data_dir = write_rte(tmp_path / "rte")
    error = one_line_exit_2(finetune.main(runner_arguments(data_dir, tmp_path / "out")), capsys,
                            "peft-lora", "PEFT is not installed", "pip install -e '.[compare]'")
    assert not (tmp_path / "out").exists(), error


@needs_peft
def test_peft_that_cannot_be_imported_is_one_line_before_any_data(tmp_path, monkeypatch, capsys):
    real_import = builtins.__import__

    def failing_import(name, *args, **kwargs):
        if name == "peft" or name.startswith("peft."):
            raise ImportError("simulated: peft is broken")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(run, "load_data", lambda *a, **k: pytest.fail("data was read"))
    monkeypatch.setattr(builtins, "__import__", failing_import)
    data_dir = write_rte(tmp_path / "rte")
    one_line_exit_2(finetune.main(runner_arguments(data_dir, tmp_path / "out")), capsys,
                    "peft-lora", "simulated: peft is broken", "pip install -e '.[compare]'")


@pytest.mark.parametrize("rank", ["0", "-3"])
def test_a_rank_out_of_range_is_one_line_naming_the_flag(rank, capsys):
    one_line_exit_2(finetune.main(["--recipe", "peft-lora", "--lora-rank", rank]), capsys, f"--lora-rank {rank}")


@pytest.mark.parametrize("rank", [1.5, "2", True])
def test_a_rank_that_is_no_whole_number_is_refused(rank):
    # A resumed invocation's arguments.json is checked like the command line (it may have been edited).
    with pytest.raises(UsageError, match=f"--lora-rank {rank}: give a whole number"):
        arguments.check_options({"lora_rank": rank})


def test_a_rank_that_is_no_number_on_the_command_line_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:  # argparse's refusal, as for every numeric option
        finetune.main(["--recipe", "peft-lora", "--lora-rank", "1.5"])
    assert exit_info.value.code == 2 and "--lora-rank: invalid int value: '1.5'" in capsys.readouterr().err


def test_lora_rank_without_peft_lora_is_refused(capsys):
    one_line_exit_2(finetune.main(["--recipe", "compacter++", "--lora-rank", "4"]), capsys,
                    "--lora-rank 4", "add peft-lora to --recipe")


@needs_peft
def test_engine_only_flags_with_peft_lora_are_refused(capsys):
    one_line_exit_2(finetune.main(["--recipe", "peft-lora", "--set", "options.n=8"]), capsys,
                    "--set options.n=8", "--lora-rank")
    one_line_exit_2(finetune.main(["--recipe", "peft-lora", "--train-output-layer"]), capsys, "--train-output-layer")
    one_line_exit_2(finetune.main(["--recipe", "peft-lora,compacter++", "--one-base", "--task", "rte,cola"]), capsys,
                    "--one-base")
