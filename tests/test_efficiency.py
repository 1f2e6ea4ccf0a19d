"""The efficiency runner end to end on a tiny config (not timed: checks tables, ratios, counts, CSV)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import surgery
from conftest import efficiency_records, run_efficiency
from runners import efficiency, plot

RECIPES = ["full-finetune", "compacter++"]
EXPECTED_ROWS = ["full-finetune", "compacter++", "no-such-recipe", "floor", "traced-identity"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("efficiency") / "out"  # a new folder: a folder of other files is refused
    scores = out.parent / "scores.csv"
    scores.write_text("recipe,score\nfull-finetune,80.0\ncompacter++,81.0\ncompacter++,83.0\n")
    argv = ["--config", "tiny", "--batch-size", "2", "--source-length", "16", "--target-length", "4",
            "--recipes", *RECIPES, "no-such-recipe", "--steps", "1", "--repeats", "2", "--warmup", "1",
            "--large-apply", "none", "--scores", str(scores), "--output-dir", str(out)]
    return run_efficiency(argv)


@pytest.fixture(scope="module")
def records(run) -> dict[str, dict[str, str]]:
    return efficiency_records(run["csv"])


def test_csv_has_every_row_and_column(records):
    assert list(records) == EXPECTED_ROWS
    assert set(next(iter(records.values()))) == set(efficiency.CSV_COLUMNS)


def test_full_finetune_ratios_are_one(records):
    full = records["full-finetune"]
    assert float(full["memory_ratio_full"]) == 1.0
    assert float(full["time_ratio_full"]) == 1.0
    assert float(records["floor"]["memory_ratio_floor"]) == 1.0


def test_measured_rows_have_numbers(records):
    for name in ("full-finetune", "compacter++", "floor", "traced-identity"):
        record = records[name]
        assert record["error"] == ""
        for column in ("peak_memory_mib", "transient_memory_mib", "step_ms", "time_ratio_full", "memory_ratio_floor"):
            assert math.isfinite(float(record[column])) and float(record[column]) > 0, (name, column)
    for name in ("floor", "traced-identity"):
        assert float(records[name]["forward_ms"]) > 0


def test_a_missing_recipe_is_a_row_that_says_why(records):
    assert "no-such-recipe" in records["no-such-recipe"]["error"]
    assert records["no-such-recipe"]["step_ms"] == ""


def test_trainable_percent_matches_surgery_report(records):
    model = efficiency.build_base_model("tiny", torch.device("cpu"), torch.float32, seed=0)
    report = surgery.report(surgery.apply(model, "compacter++"))
    assert int(records["compacter++"]["trainable_params"]) == report.trainable
    assert float(records["compacter++"]["trainable_percent"]) == pytest.approx(report.percent, rel=1e-5)
    assert float(records["full-finetune"]["trainable_percent"]) == pytest.approx(100.0)


def test_floor_trains_exactly_the_layer_norms(records):
    # T5 layer norms have a weight and no bias: 2 per encoder block, 3 per decoder block, 1 final per stack.
    d_model, encoder_blocks, decoder_blocks = 128, 2, 2
    layer_norms = d_model * (2 * encoder_blocks + 3 * decoder_blocks + 2)
    assert int(records["floor"]["trainable_params"]) == layer_norms
    assert int(records["traced-identity"]["trainable_params"]) == layer_norms


def test_full_finetune_memory_counts_parameters_and_adam_state(records):
    # Static part alone: parameters + two AdamW moments, all fp32 (tied embeddings counted once).
    model = efficiency.build_base_model("tiny", torch.device("cpu"), torch.float32, seed=0)
    parameter_mib = sum(p.numel() for p in model.parameters()) * 4 / 2**20
    peak = float(records["full-finetune"]["peak_memory_mib"])
    transient = float(records["full-finetune"]["transient_memory_mib"])
    assert peak - transient == pytest.approx(3 * parameter_mib, rel=0.01)
    assert transient >= parameter_mib  # the gradients are allocated during the step


def test_markdown_has_the_tables(run):
    text = run["markdown"].read_text()
    for heading in ("| row | trainable params", "### Tracing overhead", "### Targets", "compacter++ step time ÷ floor"):
        assert heading in text
    assert "not measured: RecipeError" in text


def test_figure_is_written_and_scores_are_averaged(run, tmp_path):
    assert run["figure"].stat().st_size > 0
    scores = tmp_path / "scores.csv"
    scores.write_text("recipe,task,score\ncompacter++,a,81\ncompacter++,b,83\n")
    assert plot.load_scores(scores) == {"compacter++": 82.0}


def test_scores_without_the_columns_are_refused(tmp_path):
    scores = tmp_path / "bad.csv"
    scores.write_text("method,accuracy\nx,1\n")
    with pytest.raises(ValueError, match="missing column"):
        plot.load_scores(scores)


def test_peak_of_allocation_events_sorts_by_time():
    assert efficiency.peak_of_allocation_events([(2, -5), (0, 10), (1, 3), (3, 4)]) == 13


def test_large_apply_timing_reports_seconds_or_the_error():
    times = efficiency.time_large_apply(["compacter++", "no-such-recipe"], "meta", repeats=1, config_name="tiny")
    assert set(times["compacter++"]) == {"wall", "cpu"} and times["compacter++"]["wall"] > 0
    assert "no-such-recipe" in times["no-such-recipe"]


def test_scores_average_metrics_within_a_task_then_tasks(tmp_path):
    # The finetune runner's results.csv: one row per recipe × task × metric, score column "mean".
    scores = tmp_path / "results.csv"
    scores.write_text("recipe,task,metric,mean,std\n"
                      "compacter++,mrpc,f1,90,0\ncompacter++,mrpc,accuracy,86,0\ncompacter++,rte,accuracy,70,0\n")
    assert plot.load_scores(scores) == {"compacter++": pytest.approx((88 + 70) / 2)}


def test_adapterdrop_rows_on_a_shallow_model_skip_its_share_of_blocks_and_say_so():
    # 3 blocks a stack: the bundled "skip the first 5" (of T5-base's 12) becomes "skip the first 1".
    from transformers import T5Config, T5ForConditionalGeneration

    from runners.efficiency.rows import prepare_candidate

    torch.manual_seed(0)
    base = T5ForConditionalGeneration(T5Config(vocab_size=64, d_model=64, d_kv=16, d_ff=64, num_layers=3, num_heads=4))
    candidate = prepare_candidate("adapterdrop", base, 1e-3)
    assert candidate.ok, candidate.error
    assert candidate.model.surgery.records["default"].plan.layers == {"encoder": [1, 2], "decoder": [1, 2]}
    assert any("skip_first 5" in note for note in candidate.notes)


def test_the_traced_identity_row_regenerates_every_block_and_computes_as_the_untouched_model():
    from transformers import T5Config, T5ForConditionalGeneration

    from runners.efficiency.rows import TRACED, prepare_candidate
    from surgery.splice import SplicedBlockMixin

    torch.manual_seed(0)
    base = T5ForConditionalGeneration(T5Config(vocab_size=64, d_model=32, d_kv=8, d_ff=32, num_layers=2, num_heads=4)).eval()
    candidate = prepare_candidate(TRACED, base, 1e-3)
    assert candidate.ok, candidate.error
    blocks = [*candidate.model.encoder.block, *candidate.model.decoder.block]
    assert all(isinstance(block, SplicedBlockMixin) and len(block.spliced) == 0 for block in blocks)
    ids = torch.tensor([[5, 6, 7, 1]])
    with torch.no_grad():
        torch.testing.assert_close(candidate.model.eval()(input_ids=ids, decoder_input_ids=ids).logits,
                                   base(input_ids=ids, decoder_input_ids=ids).logits, rtol=0, atol=0)


def test_cpu_steps_are_timed_by_two_clocks_and_a_cuda_clock_is_refused_there():
    from runners.efficiency.cli import parse_args
    from runners.efficiency.timing import time_interleaved

    samples = time_interleaved({"a": lambda: None, "b": lambda: None}, torch.device("cpu"), repeats=2, steps=3)
    assert set(samples) == {"wall", "cpu"}
    assert all(len(values) == 6 and min(values) >= 0 for clock in samples.values() for values in clock.values())
    with pytest.raises(SystemExit):
        parse_args(["--device", "cpu", "--clock", "cuda"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_events_time_the_kernels_a_step_launches():
    from runners.efficiency.timing import time_once

    matrix = torch.randn(4096, 4096, device="cuda")
    time_once(lambda: matrix @ matrix, torch.device("cuda"))  # the first product also starts cuBLAS (measured 14 ms)
    one = time_once(lambda: matrix @ matrix, torch.device("cuda"))
    ten = time_once(lambda: [matrix @ matrix for _ in range(10)], torch.device("cuda"))
    assert set(one) == {"wall", "cpu", "cuda"}
    # ten products take several times one product's GPU time, and no clock sees less than the events
    assert ten["cuda"] > 4 * one["cuda"] > 0
    assert ten["wall"] >= ten["cuda"] * 0.95


def test_a_run_in_which_no_recipe_was_measured_exits_1_naming_the_first_reason(capsys):
    from runners.efficiency.cli import refuse_if_no_recipe_was_measured
    from runners.efficiency.ratios import Row

    reason = "SurgeryError: no methods are registered"
    failed = [Row("full-finetune", "recipe", error=reason), Row("compacter++", "recipe", error=reason),
              Row("floor", "reference")]
    with pytest.raises(SystemExit) as stop:
        refuse_if_no_recipe_was_measured(failed)
    assert stop.value.code == 1
    assert f"no recipe could be measured (2 failed); the first: full-finetune: {reason}" in capsys.readouterr().err
    refuse_if_no_recipe_was_measured([*failed, Row("adapter", "recipe")])  # one measured recipe: no exit


def test_compile_runs_every_measured_row_through_torch_compile(tmp_path, monkeypatch):
    # torch.compile itself takes a minute here; a stand-in that records what it was given (and
    # returns it unchanged) shows that every measured row, and only with --compile, is compiled
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda model: compiled.append(model) or model)
    argv = ["--config", "tiny", "--batch-size", "2", "--source-length", "8", "--target-length", "2",
            "--recipes", "compacter++", "--steps", "1", "--repeats", "1", "--warmup", "1", "--large-apply", "none"]
    run_efficiency([*argv, "--output-dir", str(tmp_path / "plain")])
    assert compiled == []
    paths = run_efficiency([*argv, "--compile", "--output-dir", str(tmp_path / "compiled")])
    assert len(compiled) == len(efficiency_records(paths["csv"])) == 4  # full-finetune, compacter++, floor, traced
    assert len({id(model) for model in compiled}) == 4
    assert "every row's model through torch.compile" in paths["markdown"].read_text()
