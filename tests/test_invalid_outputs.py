"""Outputs that are no valid answer (not a label; not a number for a correlation task): each run
records their share in result.json, says it on its score line, and the tables list the cells that had
any. A score near chance from a model that rarely writes a label is then told from wrong labels
(issue 29 asks for that share of the random-init twins)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from runners.finetune import results
from runners.finetune.finish import finish_run
from runners.finetune.results import RunResult
from runners.tasks import get_task
from runners.tasks.task_record import task_from_record, task_record


def test_a_label_task_accepts_exactly_its_labels_after_any_rationale():
    sst2, world2 = get_task("sst2"), get_task("world2-mnli")
    assert [sst2.is_valid_answer(text) for text in ("positive", " negative ", "Positive", "1", "", "positive ; x")] \
        == [True, True, False, False, False, False]
    assert [world2.is_valid_answer(text) for text in ("builder ; maybe", "no", "builder ;", "builder ; nope")] \
        == [True, True, False, False]


def test_a_correlation_task_accepts_finite_numbers_only():
    stsb = get_task("stsb")
    assert [stsb.is_valid_answer(text) for text in ("3.6", " 0 ", "5.0e0", "nan", "inf", "three", "")] \
        == [True, True, True, False, False, False, False]


def test_a_free_text_task_takes_any_output_as_an_answer():
    assert get_task("record").is_valid_answer("") and get_task("record").is_valid_answer("Obama")


def test_own_data_tasks_rebuilt_from_task_json_judge_alike():
    from runners.tasks.own_data import own_task

    classes = task_from_record(task_record(own_task("reviews", ["text"], "stars", "classification", ["1", "5"])))
    scores = task_from_record(task_record(own_task("rating", ["text"], "score", "regression", value_range=(0, 1))))
    assert [classes.is_valid_answer(text) for text in ("1", "5", "3", "one")] == [True, True, False, False]
    assert [scores.is_valid_answer(text) for text in ("0.25", "-3", "high")] == [True, True, False]


def test_the_share_is_a_percentage_of_all_outputs():
    predictions = ["positive", "negative", "neutral", "", "positive", "pos"]
    assert get_task("sst2").invalid_percent(predictions) == pytest.approx(100 * 3 / 6)
    with pytest.raises(ValueError, match="no predictions"):
        get_task("sst2").invalid_percent([])


def finished_run(tmp_path, predictions: list[str]):
    """finish_run on a finished run's outcome (no training): what it saves and says."""
    task = get_task("sst2")
    rows = [{"sentence": f"sentence {i} .", "label": i % 2} for i in range(len(predictions))]
    said: list[str] = []
    outcome = SimpleNamespace(progress=SimpleNamespace(best_epoch=2, best_validation={"accuracy": 60.0}),
                              test={"accuracy": 25.0}, test_predictions=predictions, seconds=1.5)
    job = SimpleNamespace(row_label="compacter++", seed=7, setting=SimpleNamespace(label=""))
    result = finish_run(task, job, {"train": rows, "test": rows}, SimpleNamespace(epochs=3),
                        SimpleNamespace(trainable=10, percent=0.1), outcome, tmp_path,
                        SimpleNamespace(is_main_process=True), said.append)
    return result, said


def test_a_finished_run_records_and_says_the_share_its_test_predictions_show(tmp_path):
    result, said = finished_run(tmp_path, ["positive", "negative ", "it was good", "", "negative", "negativ"])
    lines = [json.loads(line) for line in (tmp_path / "test_predictions.jsonl").read_text().splitlines()]
    recount = 100 * sum(line["prediction"] not in ("negative", "positive") for line in lines) / len(lines)
    saved = json.loads((tmp_path / "result.json").read_text())
    assert recount == pytest.approx(50.0)
    assert saved["invalid_test_percent"] == pytest.approx(recount) == result.invalid_test_percent
    assert said[0].startswith("test accuracy 25.0, 50.0 % of the outputs no valid answer (checkpoint of epoch 2")


def test_a_run_whose_outputs_are_all_labels_says_nothing_of_it(tmp_path):
    result, said = finished_run(tmp_path, ["positive", "negative"])
    assert result.invalid_test_percent == 0.0 and "valid answer" not in said[0]


def save_run(folder, task: str, recipe: str, seed: int, share: float | None, *, old_format: bool = False) -> None:
    run = folder / task / recipe / f"seed-{seed}"
    run.mkdir(parents=True)
    RunResult(task, recipe, seed, {"accuracy": 50.0}, invalid_test_percent=share).save(run)
    if old_format:  # a result.json from before the share was kept
        saved = json.loads((run / "result.json").read_text())
        del saved["invalid_test_percent"]
        (run / "result.json").write_text(json.dumps(saved))


def test_the_tables_list_the_cells_with_invalid_outputs_and_their_mean_over_seeds(tmp_path, capsys):
    save_run(tmp_path, "rte", "prompt-tuning", 1, 30.0)
    save_run(tmp_path, "rte", "prompt-tuning", 2, 10.0)
    save_run(tmp_path, "rte", "adapter", 1, 0.0)
    save_run(tmp_path, "cola", "adapter", 1, None, old_format=True)
    assert results.main([str(tmp_path), "--write", str(tmp_path / "tables")]) == 0
    printed = capsys.readouterr().out
    section = printed[printed.index("## Test outputs that are no valid answer"):].split("\nwrote ")[0]
    table = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    assert table == ["| recipe | rte | seeds |", "| prompt-tuning | 20.0 | 2 |"]  # adapter: none invalid, or unknown
    assert section.strip() in (tmp_path / "tables" / "results.md").read_text()


def test_no_section_when_every_output_was_an_answer(tmp_path, capsys):
    save_run(tmp_path, "rte", "adapter", 1, 0.0)
    save_run(tmp_path, "cola", "adapter", 1, None, old_format=True)
    assert results.main([str(tmp_path)]) == 0
    assert "valid answer" not in capsys.readouterr().out


def save_predictions(run, task_name: str, predictions: list[str]) -> None:
    """What a run from before result.json kept the share left beside it: task.json, test_predictions.jsonl."""
    task = get_task(task_name)
    (run / "task.json").write_text(json.dumps(task_record(task)))
    (run / "test_predictions.jsonl").write_text("".join(json.dumps({"prediction": p}) + "\n" for p in predictions))


def test_an_older_runs_share_is_counted_from_the_predictions_beside_it(tmp_path, capsys):
    # result.json files written before 2026-12-05 lack the share; their predictions still hold it.
    save_run(tmp_path, "stsb", "prompt-tuning", 1, None, old_format=True)
    save_predictions(tmp_path / "stsb" / "prompt-tuning" / "seed-1", "stsb", ["3.5", "high", "1", "nan"])
    save_run(tmp_path, "stsb", "prompt-tuning", 2, 10.0)  # recorded: kept as it is
    save_run(tmp_path, "sst2", "prompt-tuning", 1, None, old_format=True)
    save_predictions(tmp_path / "sst2" / "prompt-tuning" / "seed-1", "sst2", ["positive", "negative"])
    save_run(tmp_path, "sst2", "adapter", 1, None, old_format=True)  # no predictions beside it: unknown
    by_run = {(r.task, r.recipe, r.seed): r.invalid_test_percent for r in results.collect([tmp_path])}
    assert by_run == {("stsb", "prompt-tuning", 1): 50.0, ("stsb", "prompt-tuning", 2): 10.0,
                      ("sst2", "prompt-tuning", 1): 0.0, ("sst2", "adapter", 1): None}
    assert results.main([str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "| recipe | sst2 | stsb | seeds |\n| --- | --- | --- | --- |\n| prompt-tuning | 0 | 30.0 | 1-2 |" in printed


def test_unreadable_predictions_leave_the_share_unknown(tmp_path):
    save_run(tmp_path, "sst2", "adapter", 1, None, old_format=True)
    run = tmp_path / "sst2" / "adapter" / "seed-1"
    save_predictions(run, "sst2", ["positive"])
    (run / "test_predictions.jsonl").write_text("{not json\n")
    assert results.collect([tmp_path])[0].invalid_test_percent is None
