"""runners.finetune --one-base: two tasks trained into one base, one named adapter each; the table says
which adapter scored what; resuming continues exactly; combinations it cannot serve exit 2.

The data: RTE-format rows whose label is readable from sentence2 ("good" → 1, "awful" → 0), served
to both RTE and MRPC (same columns), so the tiny random-init base learns each task's own label
words within a few seconds and the scores say something.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import surgery
from conftest import WORDS
from runners import finetune
from runners.finetune.evaluation import evaluate
from runners.finetune.model import build_model, parse_init_overrides
from runners.tasks import get_task
from runners.tasks.data import embedded_tokenizer, load_task_splits

TINY = ["d_model=64", "d_kv=16", "d_ff=128", "num_layers=1", "num_heads=4"]


def write_pairs(folder: Path) -> Path:
    def rows(count: int, offset: int) -> list[dict]:
        return [{"sentence1": " ".join(WORDS[(i + j) % len(WORDS)] for j in range(4)),
                 "sentence2": f"the soup was {['awful', 'good'][i % 2]} .", "label": i % 2}
                for i in range(offset, offset + count)]

    folder.mkdir(parents=True)
    with (folder / "train.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=["sentence1", "sentence2", "label"])
        writer.writeheader()
        writer.writerows(rows(32, 0))
    (folder / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(16, 100)))
    return folder


ADAPTER = ("--recipe", "adapter", "--set", "options.bottleneck=32")


def one_base(data: Path, out: Path, *extra: str, epochs: int = 25, recipe: tuple[str, ...] = ADAPTER) -> list[str]:
    return ["--task", "rte,mrpc", "--data-dir", str(data), "--init-config", *TINY, *recipe, "--epochs", str(epochs),
            "--batch-size", "8", "--lr", "3e-2", "--warmup-steps", "0", "--output-dir", str(out), "--no-progress",
            "--one-base", *extra]


def score(adapter_folder: Path, task_name: str, data: Path) -> dict[str, float]:
    """The task's test score of one adapter, loaded alone into a freshly built base (seed 42)."""
    tokenizer = embedded_tokenizer()
    model = build_model(None, tokenizer, parse_init_overrides(TINY), seed=42)
    surgery.load_adapter(model, adapter_folder)
    task = get_task(task_name)
    rows = load_task_splits(task, data, seed=42)["test"]
    sources = [tokenizer(task.to_text(r)[0]).input_ids for r in rows]
    longest = max(len(tokenizer(label).input_ids) for label in task.labels)
    return evaluate(model, tokenizer, task, rows, sources, batch_size=32, max_new_tokens=longest + 2,
                    device=torch.device("cpu")).scores


def test_two_tasks_into_one_base_and_the_table_says_which_adapter_scored_what(tmp_path, capsys):
    data, out = write_pairs(tmp_path / "data"), tmp_path / "out"
    # 12 epochs (48 steps a task): measured 2026-12-02, the label words are learned from 8 epochs
    # on (6: every score 0); 12 and 25 give the same scores (RTE 37.5, MRPC accuracy 62.5).
    assert finetune.main(one_base(data, out, epochs=12)) == 0
    printed = capsys.readouterr().out
    assert "adapters on the base: rte, mrpc (training 'mrpc' only)" in printed
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [(r["adapter"], r["task"], r["metric"]) for r in rows] == [("rte", "rte", "accuracy"), ("mrpc", "mrpc", "f1"),
                                                                      ("mrpc", "mrpc", "accuracy")]
    assert "| rte | RTE (accuracy) | adapter |" in (out / "results.md").read_text()
    for name in ("rte", "mrpc"):  # each run's record names its adapter (what results tables of several folders show)
        record = json.loads((out / "one-base" / "adapter" / "seed-42" / name / "result.json").read_text())
        assert (record["task"], record["recipe"], record["setting"]) == (name, "adapter", f"adapter {name}")
    folders = {r["adapter"]: Path(r["adapter_folder"]) for r in rows}
    for row in rows:
        # The same model scores each adapter switched on, and in mixed batches: the same numbers.
        assert float(row["test_alone"]) == float(row["test_shared_base"]) == float(row["test_mixed_batches"])
        # The table's number is the adapter's own: loaded alone into a fresh base, it scores the same.
        assert score(folders[row["adapter"]], row["task"], data)[row["metric"]] == pytest.approx(float(row["test_alone"]))
    assert any(float(r["test_alone"]) > 0 for r in rows)                     # the scores say something
    # Each adapter is its task's: RTE's adapter answers in RTE's label words, so it scores 0 on MRPC.
    assert score(folders["rte"], "mrpc", data)["accuracy"] != pytest.approx(float(rows[2]["test_alone"]))
    rte, mrpc = load_file(folders["rte"] / "t5_surgery_adapter.safetensors"), load_file(folders["mrpc"] / "t5_surgery_adapter.safetensors")
    assert rte.keys() == mrpc.keys() and any(not torch.equal(rte[k], mrpc[k]) for k in rte)


def test_an_interrupted_one_base_invocation_resumes_exactly(tmp_path):
    data = write_pairs(tmp_path / "data")
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert finetune.main(one_base(data, whole, epochs=3)) == 0
    assert finetune.main(one_base(data, cut, "--stop-after-steps", "6", epochs=3)) == 0      # inside the first task
    assert not (cut / "results.csv").exists()
    assert finetune.main(["--resume", str(cut), "--no-progress"]) == 0
    for task in ("rte", "mrpc"):
        a = load_file(whole / "one-base" / "adapter" / "seed-42" / task / "best" / "t5_surgery_adapter.safetensors")
        b = load_file(cut / "one-base" / "adapter" / "seed-42" / task / "best" / "t5_surgery_adapter.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (whole / "results.csv").read_text().replace(str(whole), "") == (cut / "results.csv").read_text().replace(str(cut), "")


@pytest.mark.parametrize("recipe, message", [
    (("--recipe", "full-finetune"), "recipe 'full-finetune': method 'full-finetune' trains the base itself"),
    ((*ADAPTER, "--sweep", "lr=3e-3,3e-2"), "--one-base trains one adapter per task into one base; --sweep"),
])
def test_what_one_base_cannot_serve_exits_2_before_training(tmp_path, capsys, recipe, message):
    data, out = write_pairs(tmp_path / "data"), tmp_path / "out"
    assert finetune.main(one_base(data, out, epochs=1, recipe=recipe)) == 2
    assert message in capsys.readouterr().err
    assert not (out / "one-base").exists()


def test_a_diverging_adapter_on_the_shared_base_ends_the_invocation_with_one_line(tmp_path, capsys):
    """On one base the next adapter is trained on top of the previous ones: a diverged one stops it all."""
    data = write_pairs(tmp_path / "data")
    argv = one_base(data, tmp_path / "out", epochs=1)
    argv[argv.index("3e-2")] = "1e30"
    assert finetune.main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("error: run one-base/adapter/seed-42/rte: non-finite")
    assert (tmp_path / "out" / "one-base" / "adapter" / "seed-42" / "rte" / "diverged.json").is_file()
    assert not (tmp_path / "out" / "results.md").exists()
