"""One's own data in `runners.finetune` (--train-file/--validation-file/--test-file, --text-column,
--label-column, --task-type): the splits as given, labels as words, metrics by type, test_predictions.jsonl
in every run folder, arguments.json without nulls, and every refusal before any model is loaded."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from conftest import write_rte
from runners import finetune
from runners.tasks.data import DataError, load_embedded
from runners.tasks.own_data import load_own_data

TINY = ["--init-config", "d_model=32", "d_kv=8", "d_ff=64", "num_layers=1", "num_heads=4"]
WORDS = ("negative", "positive")


def write_csv(path: Path, rows: list[dict], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def sentiment_rows(split: str, count: int, start: int = 0) -> list[dict]:
    """Rows of the embedded sentiment task with string labels and an extra column."""
    rows = load_embedded("embedded-sst2")[split][start:start + count]
    return [{"id": f"{split}-{i}", "text": row["sentence"], "sentiment": WORDS[row["label"]]} for i, row in enumerate(rows)]


@pytest.fixture
def own_files(tmp_path) -> dict[str, Path]:
    return {"train": write_csv(tmp_path / "train.csv", sentiment_rows("train", 48)),
            "dev": write_csv(tmp_path / "dev.csv", sentiment_rows("validation", 12)),
            "test": write_csv(tmp_path / "test.csv", sentiment_rows("test", 12))}


def own_args(files: dict[str, Path], *extra: str) -> list[str]:
    return ["--train-file", str(files["train"]), "--validation-file", str(files["dev"]), "--text-column", "text",
            "--label-column", "sentiment", "--no-progress", *extra]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_own_csv_end_to_end_on_the_embedded_model(own_files, tmp_path, capsys):
    out = tmp_path / "out"
    code = finetune.main(own_args(own_files, "--test-file", str(own_files["test"]), "--epochs", "1",
                                  "--batch-size", "16", "--output-dir", str(out)))
    assert code == 0
    printed = capsys.readouterr().out
    assert "data: 48 train / 12 validation / 12 test rows" in printed and "no --test-file" not in printed
    run = out / "own" / "compacter++" / "seed-42"
    lines = read_jsonl(run / "test_predictions.jsonl")
    test_rows = list(csv.DictReader(own_files["test"].open(encoding="utf-8")))
    assert [line["id"] for line in lines] == [row["id"] for row in test_rows]  # every test row, in order
    assert [line["text"] for line in lines] == [row["text"] for row in test_rows]
    assert [line["gold"] for line in lines] == [row["sentiment"] for row in test_rows]
    assert all("sentiment" not in line and isinstance(line["prediction"], str) for line in lines)
    # The scores of result.json are those of the written predictions (computed here independently).
    from sklearn.metrics import f1_score

    gold, predicted = [line["gold"] for line in lines], [line["prediction"] for line in lines]
    test = json.loads((run / "result.json").read_text())["test"]
    assert test["accuracy"] == pytest.approx(100 * sum(p == g for p, g in zip(predicted, gold)) / len(gold))
    assert test["macro_f1"] == pytest.approx(100 * f1_score(gold, predicted, labels=list(WORDS), average="macro",
                                                            zero_division=0))
    record = json.loads((run / "best" / "task.json").read_text())
    assert record["labels"] == list(WORDS) and record["input_template"] == "own text: {text}"
    assert record["text_columns"] == ["text"] and record["task_type"] == "classification"
    card = (run / "best" / "README.md").read_text()
    assert f"python -m runners.predict {run / 'best'} --input rows.csv --text-column text" in card
    assert "`negative`, `positive`" in card


def test_arguments_json_records_the_values_used(own_files, tmp_path):
    out = tmp_path / "out"
    assert finetune.main(own_args(own_files, "--epochs", "1", "--batch-size", "16", "--output-dir", str(out),
                                  "--stop-after-steps", "1")) == 0
    saved = json.loads((out / "arguments.json").read_text())
    assert None not in saved.values()
    assert saved["epochs"] == 1 and saved["recipe"] == "compacter++" and saved["task"] == "own"
    assert saved["lr"] == 3e-2 and saved["warmup_steps"] == 0  # the embedded settings of compacter++
    assert saved["seeds"] == [42] and saved["split_seed"] == 42 and saved["task_type"] == "classification"
    assert Path(saved["model"], "config.json").is_file() and saved["max_train"] is False
    assert "lr" in saved["defaults"] and "epochs" not in saved["defaults"]
    assert finetune.main(["--resume", str(out), "--no-progress"]) == 0  # the filled-in defaults resume as defaults
    resumed = json.loads((out / "arguments.json").read_text())
    # The CPU thread count is chosen afresh by each invocation from the cores free at its start
    # (runners/threads.py), so it is the one value a resumed invocation may record differently.
    assert isinstance(resumed.pop("threads"), int) and isinstance(saved.pop("threads"), int)
    assert resumed == saved
    assert (out / "own" / "compacter++" / "seed-42" / "test_predictions.jsonl").is_file()


def test_without_a_test_file_validation_is_drawn_from_train_and_said(own_files):
    task, splits, note = load_own_data(own_files["train"], own_files["dev"], text_columns=["text"],
                                       label_column="sentiment", seed=3)
    train_ids = [row["id"] for row in csv.DictReader(own_files["train"].open(encoding="utf-8"))]
    assert [row["id"] for row in splits["test"]] == [f"validation-{i}" for i in range(12)]
    assert len(splits["validation"]) == 4 and len(splits["train"]) == 44
    assert sorted(row["id"] for row in splits["train"] + splits["validation"]) == sorted(train_ids)
    assert note.startswith("no --test-file: the validation file (12 rows) is the test set; 4 training rows")
    again = load_own_data(own_files["train"], own_files["dev"], text_columns=["text"], label_column="sentiment", seed=4)
    assert [r["id"] for r in again[1]["validation"]] != [r["id"] for r in splits["validation"]]  # the split seed draws


@pytest.mark.parametrize("suffix", ["csv", "tsv", "json", "jsonl", "parquet"])
def test_every_file_type_reads_the_same_rows(tmp_path, suffix):
    rows = [{"q": f"question {i}", "a": f"answer {i}", "label": i % 3} for i in range(6)]
    path = tmp_path / f"train.{suffix}"
    if suffix in ("csv", "tsv"):
        write_csv(path, rows, "\t" if suffix == "tsv" else ",")
    elif suffix == "json":
        path.write_text(json.dumps(rows))
    elif suffix == "jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    else:
        pyarrow = pytest.importorskip("pyarrow")
        import pyarrow.parquet

        pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows), path)
    task, splits, _ = load_own_data(path, path, path, text_columns=["q", "a"], label_column="label")
    assert task.labels == ("0", "1", "2") and task.metric_names == ("accuracy", "macro_f1")
    assert task.to_text(splits["test"][4]) == ("own q: question 4 a: answer 4", "1")  # integer labels as words


def test_regression_and_generation_metrics(tmp_path):
    rows = [{"text": f"pair {i}", "score": value} for i, value in enumerate([0.5, 1.25, 3.0, 4.75])]
    path = tmp_path / "scores.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    task, splits, _ = load_own_data(path, path, path, text_columns=["text"], label_column="score")
    assert task.task_type == "regression" and task.to_text(rows[1])[1] == "1.25"  # inferred from the fractions
    predictions = ["0.5", "2", "oops", "4"]  # "oops" counts as the end of 0.5..4.75 farthest from its gold (0.5)
    from scipy.stats import pearsonr, spearmanr

    values, gold = [0.5, 2.0, 0.5, 4.0], [0.5, 1.25, 3.0, 4.75]
    scores = task.score(predictions, splits["test"])
    assert scores["pearson"] == pytest.approx(100 * pearsonr(values, gold)[0])
    assert scores["spearman"] == pytest.approx(100 * spearmanr(values, gold)[0])
    task, splits, _ = load_own_data(path, path, path, text_columns=["score"], label_column="text",
                                    task_type="generation")
    assert task.score(["pair 0", "pair 9", "pair 2", "pair 3"], splits["test"]) == {"exact_match": 75.0}


def refusal(capsys, argv: list[str]) -> str:
    assert finetune.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


@pytest.fixture
def no_model_loaded(monkeypatch):
    """Fails the test if a refusal got as far as loading a tokenizer or model."""
    import runners.finetune.run as run

    def forbidden(*args, **kwargs):
        raise AssertionError("a model was loaded before the data was checked")

    monkeypatch.setattr(run, "load_tokenizer", forbidden)
    monkeypatch.setattr(run, "build_model", forbidden)


def test_refusals_name_the_problem_before_any_model_loads(own_files, tmp_path, capsys, no_model_loaded):
    out = ["--output-dir", str(tmp_path / "out")]
    err = refusal(capsys, own_args(own_files, *out)[:6] + ["--label-column", "stars", *out])
    assert "--label-column 'stars'" in err and "columns found: id, text, sentiment" in err
    args = own_args(own_files, *out)
    args[args.index("text")] = "body"
    err = refusal(capsys, args)
    assert "--text-column 'body'" in err and "columns found: id, text, sentiment" in err
    missing = own_args({**own_files, "dev": tmp_path / "nope.csv"}, *out)
    assert "nope.csv: no such file" in refusal(capsys, missing)
    (tmp_path / "train.xlsx").write_text("x")
    assert "unsupported file type '.xlsx'" in refusal(capsys, own_args({**own_files, "train": tmp_path / "train.xlsx"}, *out))
    one_class = write_csv(tmp_path / "one.csv", [{"id": "1", "text": "a", "sentiment": "positive"}] * 3)
    assert "at least two classes" in refusal(capsys, own_args({**own_files, "train": one_class}, *out))
    err = refusal(capsys, own_args(own_files, "--task-type", "regression", *out))
    assert "'negative'" in err and "is not a number" in err
    stranger = write_csv(tmp_path / "odd.csv", [{"id": "1", "text": "a", "sentiment": "maybe"}])
    err = refusal(capsys, own_args({**own_files, "test": stranger}, "--test-file", str(stranger), *out))
    assert "odd.csv, line 2" in err and "'maybe'" in err and "negative, positive" in err
    assert "--train-file" in refusal(capsys, ["--text-column", "text", *out])
    assert "registered task" in refusal(capsys, own_args(own_files, "--task", "sst2", *out))
    assert not (tmp_path / "out").exists()  # nothing written


def test_builtin_task_runs_write_test_predictions_too(tmp_path):
    data = write_rte(tmp_path / "rte")
    out = tmp_path / "out"
    assert finetune.main(["--task", "rte", "--data-dir", str(data), *TINY, "--recipe", "bitfit", "--epochs", "1",
                          "--batch-size", "8", "--no-progress", "--output-dir", str(out)]) == 0
    run = out / "rte" / "bitfit" / "seed-42"
    lines = read_jsonl(run / "test_predictions.jsonl")
    assert len(lines) == 6 and {line["gold"] for line in lines} <= {"entailment", "not_entailment"}
    assert set(lines[0]) == {"sentence1", "sentence2", "prediction", "gold"}
    accuracy = 100 * sum(line["prediction"] == line["gold"] for line in lines) / len(lines)
    assert json.loads((run / "result.json").read_text())["test"]["accuracy"] == pytest.approx(accuracy)
    assert json.loads((run / "task.json").read_text())["input_template"] == "rte sentence1: {sentence1} sentence2: {sentence2}"


def test_recipes_seeds_sweeps_jobs_and_one_base_with_own_data(own_files, tmp_path, jobs_workers_share_imports):
    common = own_args(own_files, *TINY, "--epochs", "1", "--batch-size", "16")
    assert finetune.main([*common, "--recipe", "adapter,bitfit", "--seeds", "1", "2", "--jobs", "2",
                          "--output-dir", str(tmp_path / "jobs")]) == 0
    assert len(list((tmp_path / "jobs" / "own").rglob("test_predictions.jsonl"))) == 4
    assert finetune.main([*common, "--recipe", "bitfit", "--sweep", "lr=1e-3,3e-3",
                          "--output-dir", str(tmp_path / "sweep")]) == 0
    saved = json.loads((tmp_path / "sweep" / "arguments.json").read_text())
    assert len(list((tmp_path / "sweep" / "own").rglob("result.json"))) == 2 and None not in saved.values()
    assert finetune.main([*common, "--task", "reviews", "--recipe", "adapter", "--one-base",
                          "--output-dir", str(tmp_path / "one")]) == 0
    run = tmp_path / "one" / "one-base" / "adapter" / "seed-42" / "reviews"
    assert len(read_jsonl(run / "test_predictions.jsonl")) == 12
    assert json.loads((run / "best" / "task.json").read_text())["input_template"] == "reviews text: {text}"
    assert not math.isnan(json.loads((run / "result.json").read_text())["test"]["accuracy"])


def test_a_test_label_outside_the_training_labels_is_a_data_error(tmp_path):
    train = write_csv(tmp_path / "t.csv", [{"x": "a", "y": "1"}, {"x": "b", "y": "2"}])
    test = write_csv(tmp_path / "s.csv", [{"x": "c", "y": "3"}])
    with pytest.raises(DataError, match=r"s\.csv, line 2: label '3' .* not among the training file's labels \(1, 2\)"):
        load_own_data(train, train, test, text_columns=["x"], label_column="y")


@pytest.mark.parametrize(("task_type", "labels", "kind"), [
    ("classification", ["bad", "good"], "label"), ("regression", None, "number"), ("generation", None, "text")])
def test_an_own_tasks_type_is_the_kind_of_answer_it_is_scored_on(task_type, labels, kind):
    # One rule decides what a valid answer is (Task.target_kind); the recorded task type must say the same.
    from runners.tasks.own_data import own_task
    from runners.tasks.task_record import task_from_record, task_record

    task = own_task("mine", ["text"], "label", task_type, labels)
    assert task.target_kind == kind
    record = task_record(task)
    assert record["task_type"] == task_type
    assert task_from_record(record).target_kind == kind


@pytest.mark.parametrize(("task_type", "labels", "message"), [
    ("classification", None, "needs its label set"), ("ranking", None, "choose one of classification")])
def test_an_own_task_without_a_label_set_or_with_an_unknown_type_is_refused(task_type, labels, message):
    from runners.tasks.own_data import own_task

    with pytest.raises(ValueError, match=message):
        own_task("mine", ["text"], "label", task_type, labels)
