"""`python -m runners.predict`: predictions of a trained run for a label-less file, equal to a plainly
written reference (the input formatted by hand, the base rebuilt, the adapter loaded, generate row by
row), for one's own data and for a built-in task; and every refusal on one line (exit 2)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
from transformers import T5ForConditionalGeneration, set_seed

import surgery
from runners import finetune, predict
from runners.finetune.model import tiny_t5_config
from runners.tasks.data import embedded_tokenizer, load_embedded

TINY = ["d_model=32", "d_kv=8", "d_ff=64", "num_layers=1", "num_heads=4"]
OVERRIDES = {"d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 1, "num_heads": 4}
WORDS = ("negative", "positive")


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def sentences(split: str, count: int) -> list[dict]:
    return load_embedded("embedded-sst2")[split][:count]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """A tiny own-data run and a tiny embedded-sst2 run (random-init bases, a few steps each)."""
    folder = tmp_path_factory.mktemp("predict")
    train = write_csv(folder / "train.csv", [{"text": r["sentence"], "sentiment": WORDS[r["label"]], "id": i}
                                             for i, r in enumerate(sentences("train", 32))])
    dev = write_csv(folder / "dev.csv", [{"text": r["sentence"], "sentiment": WORDS[r["label"]], "id": i}
                                         for i, r in enumerate(sentences("validation", 8))])
    common = ["--init-config", *TINY, "--recipe", "adapter", "--epochs", "1", "--batch-size", "8", "--lr", "1e-2",
              "--no-progress"]
    assert finetune.main(["--train-file", str(train), "--validation-file", str(dev), "--text-column", "text",
                          "--label-column", "sentiment", *common, "--output-dir", str(folder / "own")]) == 0
    assert finetune.main(["--task", "embedded-sst2", "--max-train", "32", *common,
                          "--output-dir", str(folder / "sst2")]) == 0
    label_less = write_csv(folder / "new.csv", [{"id": f"n{i}", "body": r["sentence"]}
                                                for i, r in enumerate(sentences("test", 10))])
    return {"folder": folder, "own": folder / "own" / "own" / "adapter" / "seed-42",
            "sst2": folder / "sst2" / "embedded-sst2" / "adapter" / "seed-42", "input": label_less}


def reference_predictions(best: Path, template: str, texts: list[str], num_beams: int = 1) -> list[str]:
    """The base rebuilt as the run built it (seed 42), the adapter loaded, greedy generate one row at a time."""
    tokenizer = embedded_tokenizer()
    set_seed(42)
    model = T5ForConditionalGeneration(tiny_t5_config(tokenizer, OVERRIDES))
    surgery.load_adapter(model, best)
    model.eval()
    longest = max(len(tokenizer(word).input_ids) for word in WORDS)
    predictions = []
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(template.format(text=text, sentence=text), return_tensors="pt").input_ids
            output = model.generate(ids, max_new_tokens=longest + 2, do_sample=False, num_beams=num_beams)
            predictions.append(tokenizer.decode(output[0], skip_special_tokens=True).strip())
    return predictions


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_predict_a_label_less_file_with_an_own_data_run(trained, tmp_path, capsys):
    output = tmp_path / "predictions.jsonl"
    assert predict.main([str(trained["own"]), "--input", str(trained["input"]), "--text-column", "body",
                         "--output", str(output), "--batch-size", "3", "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith(f"wrote 10 predictions to {output}")
    lines = read_jsonl(output)
    texts = [r["sentence"] for r in sentences("test", 10)]
    assert [line["id"] for line in lines] == [f"n{i}" for i in range(10)]
    assert [line["body"] for line in lines] == texts  # the input's columns kept, in order
    assert [line["prediction"] for line in lines] == reference_predictions(trained["own"] / "best", "own text: {text}", texts)


def test_predict_a_builtin_task_run_knows_its_input_format(trained, tmp_path):
    output = tmp_path / "p.jsonl"
    # The run folder's parent (the --output-dir, one run inside) is found as well.
    assert predict.main([str(trained["folder"] / "sst2"), "--input", str(trained["input"]), "--text-column", "body",
                         "--output", str(output), "--no-progress"]) == 0
    texts = [r["sentence"] for r in sentences("test", 10)]
    expected = reference_predictions(trained["sst2"] / "best", "sst2 sentence: {sentence}", texts)
    assert [line["prediction"] for line in read_jsonl(output)] == expected


def test_predict_repeats_the_runs_test_predictions_and_searches_beams(trained, tmp_path):
    # the run records the autocast it evaluated under (none on the CPU), which predict takes on a GPU
    for folder in (trained["sst2"], trained["sst2"] / "best"):
        assert json.loads((folder / "task.json").read_text())["precision"] == "no"
    test_lines = read_jsonl(trained["sst2"] / "test_predictions.jsonl")[:24]
    source = tmp_path / "test.jsonl"
    source.write_text("".join(json.dumps({"sentence": line["sentence"]}) + "\n" for line in test_lines))
    assert predict.main([str(trained["sst2"] / "best"), "--input", str(source), "--output", str(tmp_path / "o.jsonl"),
                         "--no-progress"]) == 0
    assert [line["prediction"] for line in read_jsonl(tmp_path / "o.jsonl")] == [line["prediction"] for line in test_lines]
    assert predict.main([str(trained["sst2"] / "best"), "--input", str(source), "--output", str(tmp_path / "b.jsonl"),
                         "--no-progress", "--num-beams", "3", "--batch-size", "5"]) == 0
    texts = [line["sentence"] for line in test_lines]
    expected = reference_predictions(trained["sst2"] / "best", "sst2 sentence: {sentence}", texts, num_beams=3)
    assert [line["prediction"] for line in read_jsonl(tmp_path / "b.jsonl")] == expected


def test_predict_a_world2_run_writes_the_rationale_apart_from_the_label(tmp_path, capsys):
    """World 2's tasks have the model write ``<rationale> ; <label>``: predict generates as long as training's
    targets may be and splits the text at the last ";" (reference: generate and split by hand)."""
    from transformers import AutoTokenizer

    from runners.embedded.world2 import MODEL_DIR
    from runners.tasks.data import load_embedded

    assert finetune.main(["--task", "world2-sst2", "--max-train", "32", "--init-config", *TINY, "--recipe", "adapter",
                          "--epochs", "2", "--batch-size", "8", "--lr", "3e-2", "--no-progress",
                          "--output-dir", str(tmp_path / "run")]) == 0
    run = tmp_path / "run" / "world2-sst2" / "adapter" / "seed-42"
    assert json.loads((run / "task.json").read_text())["rationale_column"] == "rationale"
    rows = load_embedded("world2-sst2")["test"][:10]
    source = tmp_path / "new.jsonl"
    source.write_text("".join(json.dumps({"sentence": row["sentence"]}) + "\n" for row in rows))
    capsys.readouterr()
    assert predict.main([str(run), "--input", str(source), "--output", str(tmp_path / "p.jsonl"), "--no-progress"]) == 0

    tokenizer = AutoTokenizer.from_pretrained(str(MODEL_DIR))
    set_seed(42)
    model = T5ForConditionalGeneration(tiny_t5_config(tokenizer, OVERRIDES))
    surgery.load_adapter(model, run / "best")
    model.eval()
    expected = []
    with torch.no_grad():
        for row in rows:
            ids = tokenizer(f"sst2 sentence: {row['sentence']}", return_tensors="pt").input_ids
            text = tokenizer.decode(model.generate(ids, max_new_tokens=24, do_sample=False)[0], skip_special_tokens=True)
            rationale, _, label = text.rpartition(";")
            expected.append({"predicted_rationale": rationale.strip(), "prediction": label.strip()})
    lines = read_jsonl(tmp_path / "p.jsonl")
    assert [{key: line[key] for key in ("predicted_rationale", "prediction")} for line in lines] == expected
    outside = sum(item["prediction"] not in ("negative", "positive") for item in expected)
    assert capsys.readouterr().out.startswith(f"wrote 10 predictions to {tmp_path / 'p.jsonl'} (" +
                                              (f"{outside} not one of" if outside else "each one of"))


def refused(capsys, argv: list[str]) -> str:
    assert predict.main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]  # besides transformers' loading bar
    assert len(lines) == 1 and err.endswith(lines[0] + "\n") and "Traceback" not in err
    return lines[0]


def test_refusals(trained, tmp_path, capsys):
    run, new = str(trained["own"]), str(trained["input"])
    out = ["--output", str(tmp_path / "o.jsonl")]
    err = refused(capsys, [run, "--input", new, *out])  # the training column 'text' is not in the input
    assert "no column 'text'" in err and "columns found: id, body" in err and "--text-column" in err
    assert "1 text column(s)" in refused(capsys, [run, "--input", new, "--text-column", "body,id,x", *out])
    assert "no such file" in refused(capsys, [run, "--input", str(tmp_path / "none.csv"), *out])
    (tmp_path / "rows.xlsx").write_text("x")
    assert "unsupported file type" in refused(capsys, [run, "--input", str(tmp_path / "rows.xlsx"), *out])
    assert "is the --input file" in refused(capsys, [run, "--input", new, "--text-column", "body", "--output", new])
    assert "holds 2 runs" in refused(capsys, [str(trained["folder"]), "--input", new, *out])
    bare = tmp_path / "bare"
    shutil.copytree(trained["own"] / "best", bare / "best")
    (bare / "best" / "task.json").unlink()
    assert "no task.json" in refused(capsys, [str(bare / "best"), "--input", new, "--text-column", "body", *out])
    record = json.loads((trained["own"] / "task.json").read_text())
    (bare / "best" / "task.json").write_text(json.dumps({**record, "labels": None}))
    assert "label set" in refused(capsys, [str(bare / "best"), "--input", new, "--text-column", "body", *out])
    other = tmp_path / "other-base"
    tokenizer = embedded_tokenizer()
    set_seed(7)
    T5ForConditionalGeneration(tiny_t5_config(tokenizer, OVERRIDES)).save_pretrained(other)
    tokenizer.save_pretrained(other)
    capsys.readouterr()
    err = refused(capsys, [run, "--input", new, "--text-column", "body", "--model", str(other), *out])
    assert "other weights" in err
    assert not (tmp_path / "o.jsonl").exists()
