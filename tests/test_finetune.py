"""runners.finetune end to end on a tiny T5 and local RTE files; the CLI's defaults and error exits."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from transformers import T5ForConditionalGeneration

import surgery
from conftest import write_rte
from runners import finetune
from runners.finetune.evaluation import evaluate
from runners.finetune.invocation import resolve_settings
from runners.finetune.model import build_model, parse_init_overrides
from runners.finetune.jsonl_log import read_jsonl
from runners.finetune.results import RunResult, csv_table, markdown_table, summarize
from runners.finetune.run import train_config
from runners.finetune.state import frozen_checksum
from runners.finetune.training import make_optimizer, make_scheduler
from runners.tasks import get_task
from runners.tasks.data import embedded_tokenizer, load_task_splits

TINY = ["d_model=32", "d_kv=8", "d_ff=64", "num_layers=1", "num_heads=4"]


def tiny_run(data_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    return ["--task", "rte", "--data-dir", str(data_dir), "--init-config", *TINY, "--recipe", "adapter",
            "--epochs", "2", "--batch-size", "8", "--lr", "3e-3", "--warmup-steps", "2",
            "--output-dir", str(output_dir), "--no-progress", *extra]


def test_end_to_end_on_local_rte_files(tmp_path, capsys):
    data_dir, out = write_rte(tmp_path / "rte"), tmp_path / "out"
    assert finetune.main(tiny_run(data_dir, out)) == 0
    printed = capsys.readouterr().out
    run_dir = out / "rte" / "adapter" / "seed-42"

    # The table: printed, and written as markdown and CSV with RTE's metric.
    assert "| adapter |" in printed and "RTE (accuracy)" in printed
    assert "RTE (accuracy)" in (out / "results.md").read_text()
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [(r["task"], r["recipe"], r["metric"]) for r in rows] == [("rte", "adapter", "accuracy")]
    result = RunResult.load(run_dir / "result.json")
    assert float(rows[0]["mean"]) == pytest.approx(result.test["accuracy"], abs=1e-6)

    # One eval record per epoch, the test record last; the best epoch is the best validation score.
    log = read_jsonl(run_dir / "log.jsonl")
    evals = [r for r in log if r["event"] == "eval"]
    assert [r["epoch"] for r in evals] == [1, 2] and log[-1]["event"] == "test"
    best = max(evals, key=lambda r: r["validation"]["accuracy"])  # first of equals wins, as in training
    assert result.best_epoch == best["epoch"] and result.validation == best["validation"]
    assert (run_dir / "last" / "training_state.pt").is_file()

    # The test score is the best checkpoint's: reload it into a fresh model and score the test split.
    tokenizer = embedded_tokenizer()
    model = build_model(None, tokenizer, parse_init_overrides(TINY), seed=123)  # other base: would fail
    with pytest.raises(surgery.CheckpointError):
        surgery.load_adapter(build_model(None, tokenizer, parse_init_overrides(["d_model=16", "d_kv=4"])), run_dir / "best")
    model = build_model(None, tokenizer, parse_init_overrides(TINY), seed=42)
    surgery.load_adapter(model, run_dir / "best")
    task = get_task("rte")
    test_rows = load_task_splits(task, data_dir, seed=42)["test"]
    sources = [tokenizer(task.to_text(r)[0]).input_ids for r in test_rows]
    longest_target = max(len(tokenizer(label).input_ids) for label in task.labels)
    scores = evaluate(model, tokenizer, task, test_rows, sources, batch_size=4, max_new_tokens=longest_target + 2,
                      device=torch.device("cpu")).scores
    assert scores == pytest.approx(result.test)


def test_embedded_tokenizer_serves_the_tiny_model():
    tokenizer = embedded_tokenizer()
    model = build_model(None, tokenizer, parse_init_overrides(TINY), seed=0)
    assert model.config.vocab_size == len(tokenizer)
    assert model.config.decoder_start_token_id == tokenizer.pad_token_id == 0
    batch = tokenizer(["rte sentence1: the lamp was good . sentence2: the soup"], return_tensors="pt")
    output = model.generate(**batch, max_new_tokens=3, do_sample=False)
    assert output.shape[1] <= 4 and isinstance(tokenizer.decode(output[0], skip_special_tokens=True), str)


def test_model_option_loads_a_local_pretrained_folder(tmp_path, capsys):
    """--model takes what save_pretrained wrote (the path for users with downloaded weights)."""
    tokenizer = embedded_tokenizer()
    pretrained = build_model(None, tokenizer, parse_init_overrides(TINY), seed=5)
    pretrained.save_pretrained(tmp_path / "local-t5")
    tokenizer.save_pretrained(tmp_path / "local-t5")
    arguments = tiny_run(write_rte(tmp_path / "rte"), tmp_path / "out", "--epochs", "1")
    init = arguments.index("--init-config")
    del arguments[init:init + 1 + len(TINY)]
    assert finetune.main([*arguments, "--model", str(tmp_path / "local-t5")]) == 0
    assert f"model: {tmp_path / 'local-t5'}" in capsys.readouterr().out
    # training started from the saved weights: the frozen base matches them
    state = torch.load(tmp_path / "out" / "rte" / "adapter" / "seed-42" / "last" / "training_state.pt",
                       weights_only=False)
    reloaded = T5ForConditionalGeneration.from_pretrained(tmp_path / "local-t5")
    surgery.apply(reloaded, "adapter")
    assert state["frozen_checksum"] == frozen_checksum(reloaded) and state["progress"]["global_step"] == 3
    assert finetune.main([*arguments, "--model", str(tmp_path / "local-t5"), "--init-config", "d_model=8",
                          "--output-dir", str(tmp_path / "other")]) == 2


def test_unknown_task_exits_2_with_suggestion(capsys):
    assert finetune.main(["--task", "rtee"]) == 2
    error = capsys.readouterr().err
    assert "did you mean 'rte'" in error and "Traceback" not in error


def test_missing_split_file_exits_2(tmp_path, capsys):
    folder = write_rte(tmp_path / "rte")
    (folder / "validation.jsonl").unlink()
    assert finetune.main(tiny_run(folder, tmp_path / "out")) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "validation" in error and "Traceback" not in error


def test_malformed_file_exits_2(tmp_path, capsys):
    folder = write_rte(tmp_path / "rte")
    with (folder / "validation.jsonl").open("a") as file:
        file.write('{"sentence1": "a", "sentence2": \n')
    assert finetune.main(tiny_run(folder, tmp_path / "out")) == 2
    error = capsys.readouterr().err
    assert "malformed" in error and "validation.jsonl" in error


def test_recipe_that_does_not_fit_exits_2_before_training(tmp_path, capsys):
    # compacter's n = 4 must divide the bottleneck d_model / 32 = 1
    arguments = tiny_run(write_rte(tmp_path / "rte"), tmp_path / "out")
    arguments[arguments.index("adapter")] = "compacter"
    assert finetune.main(arguments) == 2
    assert "options.n" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_existing_output_dir_is_not_overwritten_silently(tmp_path, capsys):
    data_dir, out = write_rte(tmp_path / "rte"), tmp_path / "out"
    arguments = tiny_run(data_dir, out, "--max-train", "8", "--epochs", "1")
    assert finetune.main(arguments) == 0
    assert finetune.main(arguments) == 2
    assert "--resume" in capsys.readouterr().err


def test_more_training_rows_asked_for_than_there_are_is_one_note_and_all_rows(tmp_path, capsys):
    data_dir, out = write_rte(tmp_path / "rte"), tmp_path / "out"
    assert finetune.main(tiny_run(data_dir, out, "--max-train", "500", "--epochs", "1")) == 0
    captured = capsys.readouterr()
    result = RunResult.load(out / "rte" / "adapter" / "seed-42" / "result.json")
    assert 0 < result.train_examples < 500
    assert f"note: --max-train 500 is more than the {result.train_examples} training rows; using all of them" \
        in captured.out
    assert "Warning" not in captured.out + captured.err


def test_out_of_gpu_memory_gives_a_hint(monkeypatch, capsys):
    import runners.finetune.run

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(runners.finetune.run, "run_all", out_of_memory)
    assert finetune.main(["--batch-size", "100"]) == 3
    error = capsys.readouterr().err
    assert "out of GPU memory" in error and "--grad-accum" in error and "--batch-size" in error


@pytest.mark.parametrize("ending", ["returns", "out of GPU memory", "raises"])
def test_the_output_folder_lock_is_released_however_the_runs_end(ending, monkeypatch, tmp_path):
    """While the invocation's Settings still exist, another process may write into the folder again."""
    import runners.finetune.run
    from runners.finetune.cli import run
    from runners.finetune.invocation import Settings
    from runners.finetune.lock import OutputLock

    def runs(settings, say):
        if ending == "out of GPU memory":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        if ending == "raises":
            raise RuntimeError("a run failed")
        return 0

    monkeypatch.setattr(runners.finetune.run, "run_all", runs)
    lock = OutputLock(tmp_path)
    lock.acquire()
    settings = Settings(tasks=["rte"], recipes=None, seeds=[42], output_dir=tmp_path, options={}, lock=lock)
    if ending == "raises":
        with pytest.raises(RuntimeError):
            run(settings)
    else:
        assert run(settings) == (0 if ending == "returns" else 3)
    other = OutputLock(tmp_path)
    other.acquire()  # raises UsageError ("in use by another ... process") while the first lock is held
    other.release()
    assert settings.lock is lock


@pytest.mark.parametrize("arguments, message", [
    (["--seed", "1", "--seeds", "1", "2"], "not both"),
    (["--low-resource", "300"], "--epochs"),
    (["--batch-size", "0"], "--batch-size"),
    (["--lr", "-1"], "--lr"),
])
def test_bad_arguments_exit_2(arguments, message, capsys):
    assert finetune.main(arguments) == 2
    assert message in capsys.readouterr().err


def test_argparse_rejects_a_non_number(capsys):
    with pytest.raises(SystemExit) as exit_info:
        finetune.main(["--epochs", "many"])
    assert exit_info.value.code == 2


def _resolved(argv: list[str]):
    return resolve_settings(finetune.build_parser().parse_args(argv))


def test_low_resource_follows_the_papers_epoch_schedule():
    settings = _resolved(["--low-resource", "500", "--task", "rte"])
    assert settings.seeds == [42, 43, 44, 45, 46]
    config, _ = train_config(settings.options, get_task("rte"), Path("x"), 42, None, recipe="adapter")
    assert config.epochs == 200
    for examples, epochs in ((100, 1000), (1000, 100), (2000, 50), (4000, 25)):
        options = _resolved(["--low-resource", str(examples)]).options
        assert train_config(options, get_task("rte"), Path("x"), 42, None, recipe="adapter")[0].epochs == epochs


def test_paper_defaults_and_overrides():
    def config_for(task: str, recipe: str, *argv: str):
        return train_config(_resolved(list(argv)).options, get_task(task), Path("x"), 42, None, recipe=recipe)[0]

    rte = config_for("rte", "compacter++")
    assert (rte.learning_rate, rte.batch_size, rte.warmup_steps, rte.epochs, rte.max_source_length) == (3e-3, 100, 500, 20, 128)
    cb = config_for("cb", "adapter")
    assert (cb.learning_rate, cb.warmup_steps, cb.max_source_length) == (3e-4, 0, 256)
    assert config_for("mnli", "full-finetune").epochs == 3
    assert config_for("record", "compacter").max_source_length == 512
    assert config_for("rte", "prompt-tuning-t").learning_rate == 3e-1
    assert config_for("rte", "prompt-tuning-r").learning_rate == 3e-2
    overridden = config_for("rte", "compacter++", "--lr", "0.01", "--epochs", "4", "--batch-size", "16",
                            "--warmup-steps", "7", "--max-source-length", "64", "--grad-accum", "2")
    assert (overridden.learning_rate, overridden.epochs, overridden.batch_size, overridden.warmup_steps,
            overridden.max_source_length, overridden.grad_accum) == (0.01, 4, 16, 7, 64, 2)


def test_optimizer_and_schedule_are_the_papers():
    optimizer = make_optimizer([torch.nn.Parameter(torch.zeros(2))], 3e-3)
    group = optimizer.param_groups[0]
    assert isinstance(optimizer, torch.optim.AdamW)
    assert (group["betas"], group["eps"], group["weight_decay"], group["lr"]) == ((0.9, 0.999), 1e-8, 0.0, 3e-3)
    schedule = make_scheduler(optimizer, warmup_steps=4, total_steps=12).lr_lambdas[0]
    expected = [step / 4 if step < 4 else (12 - step) / 8 for step in range(13)]
    assert [schedule(step) for step in range(13)] == pytest.approx(expected)


def test_table_reports_mean_and_sample_std_over_seeds():
    runs = [RunResult("mrpc", "compacter", seed, {"f1": f1, "accuracy": acc}) for seed, f1, acc in
            ((1, 90.0, 86.0), (2, 92.0, 85.0), (3, 91.0, 87.0))]
    rows = summarize(runs)
    assert rows[0].cells[0].std == pytest.approx(math.sqrt(((90 - 91) ** 2 + (92 - 91) ** 2) / 2))
    assert "91.0/86.0 ± 1.0/1.0" in markdown_table(rows)
    assert "compacter,mrpc,f1,91.0,1.0,3" in csv_table(rows)
