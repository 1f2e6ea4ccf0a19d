"""python -m runners.pretrain end to end on a tiny model: it trains, saves a from_pretrained
folder, resumes exactly, and refuses bad corpora with one line and exit 2."""

from __future__ import annotations

import gzip
import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import T5ForConditionalGeneration

from runners import pretrain

TINY = ["d_model=32", "d_kv=8", "d_ff=64", "num_layers=1", "num_heads=2", "dropout_rate=0.0"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from runners.embedded.language.corpus import make_corpus

    folder = tmp_path_factory.mktemp("corpus")
    documents = make_corpus(seed=5, count=300)
    (folder / "part-1.txt").write_text("\n".join(documents[:200]) + "\n", encoding="utf-8")
    with gzip.open(folder / "part-2.jsonl.gz", "wt", encoding="utf-8") as file:
        for document in documents[200:]:
            file.write(json.dumps({"text": document}) + "\n")
    return folder


def run(argv, capsys=None):
    code = pretrain.main(argv)
    return code, (capsys.readouterr() if capsys else None)


def tiny_args(corpus, out, *extra):
    return ["--corpus", str(corpus), "--config", *TINY, "--steps", "8", "--batch-size", "4", "--chunk-length", "24",
            "--eval-every", "4", "--save-every", "4", "--log-every", "2", "--lr", "3e-3", "--warmup-steps", "2",
            "--threads", "1", "--no-progress", "--precision", "no", "--output-dir", str(out), *extra]


def test_tiny_run_trains_and_saves_a_from_pretrained_folder(corpus, tmp_path, capsys):
    code, out = run(tiny_args(corpus, tmp_path / "run"), capsys)
    assert code == 0, out.err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    losses = [record["held_out_loss"] for record in summary["held_out_loss"]]
    assert summary["completed"] and summary["step"] == 8 and len(losses) == 3   # steps 0, 4, 8
    assert losses[-1] < losses[0]
    model = T5ForConditionalGeneration.from_pretrained(tmp_path / "run" / "model")
    assert model.config.d_model == 32 and model.config.dropout_rate == 0.1   # fine-tuning dropout saved
    steps = [r["step"] for r in map(json.loads, (tmp_path / "run" / "log.jsonl").read_text().splitlines())
             if r["event"] == "train"]
    assert steps == [2, 4, 6, 8]


def test_model_continues_on_the_embedded_corpus_with_its_own_architecture(corpus, tmp_path, capsys):
    # Without a corpus option the embedded defaults apply, but their architecture (--config) sizes a
    # new model only: --model alone was refused as "--config ... cannot be combined with --model".
    code, out = run(tiny_args(corpus, tmp_path / "first"), capsys)
    assert code == 0 and "Writing model shards" not in out.err  # --no-progress quiets transformers' bars too
    continued = ["--model", str(tmp_path / "first" / "model"), "--max-documents", "40", "--steps", "2",
                 "--batch-size", "4", "--chunk-length", "24", "--eval-every", "2", "--threads", "1", "--no-progress",
                 "--precision", "no", "--output-dir", str(tmp_path / "continued")]
    code, out = run(continued, capsys)
    assert code == 0, out.err
    assert json.loads((tmp_path / "continued" / "summary.json").read_text())["completed"]
    model = T5ForConditionalGeneration.from_pretrained(tmp_path / "continued" / "model")
    assert (model.config.d_model, model.config.num_layers) == (32, 1)  # the given model's, not the embedded one's
    code, out = run([*continued, "--config", "d_model=64", "--overwrite"], capsys)
    assert code == 2 and "--config sizes a new model; it cannot be combined with --model" in out.err


def test_resume_equals_an_uninterrupted_run(corpus, tmp_path):
    assert run(tiny_args(corpus, tmp_path / "full"))[0] == 0
    assert run(tiny_args(corpus, tmp_path / "parts", "--stop-after-steps", "3"))[0] == 0
    assert not (tmp_path / "parts" / "model").exists()
    assert run(["--resume", str(tmp_path / "parts"), "--no-progress"])[0] == 0
    full = load_file(tmp_path / "full" / "model" / "model.safetensors")
    parts = load_file(tmp_path / "parts" / "model" / "model.safetensors")
    assert full.keys() == parts.keys()
    assert all(torch.equal(full[name], parts[name]) for name in full)
    logged = [r["step"] for r in map(json.loads, (tmp_path / "parts" / "log.jsonl").read_text().splitlines())
              if r["event"] == "train"]
    assert logged == [2, 4, 6, 8]


def test_resume_refuses_a_changed_setting(corpus, tmp_path, capsys):
    assert run(tiny_args(corpus, tmp_path / "r", "--stop-after-steps", "2"))[0] == 0
    code, out = run(["--resume", str(tmp_path / "r"), "--lr", "1e-2"], capsys)
    assert code == 2 and "--lr 0.01 differs from the interrupted run's (0.003)" in out.err


@pytest.mark.parametrize("content, message", [
    ("\n\n   \n", "holds no document"),
    (b"\xff\xfe\x00bad", "not UTF-8 text"),
])
def test_empty_or_unreadable_corpus_is_one_line_and_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "corpus.txt"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, out = run(["--corpus", str(path), "--config", *TINY, "--output-dir", str(tmp_path / "o")], capsys)
    assert code == 2 and message in out.err and len(out.err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_missing_corpus_and_bad_numbers(tmp_path, capsys):
    code, out = run(["--corpus", str(tmp_path / "nope.txt"), "--output-dir", str(tmp_path / "o")], capsys)
    assert code == 2 and "no such file or folder" in out.err
    code, out = run(["--corpus", str(tmp_path), "--steps", "0"], capsys)
    assert code == 2 and "--steps must be at least 1" in out.err


def test_help_lists_the_corpus_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        pretrain.main(["--help"])
    assert exit_.value.code == 0
    assert "--corpus" in capsys.readouterr().out


def test_two_processes_train_what_one_process_trains(corpus, tmp_path):
    # torchrun with 2 gloo processes: --batch-size is the global batch, split between them; the loss
    # is normalised by the global token count, so only the order of float additions differs.
    import os
    import subprocess
    import sys
    from pathlib import Path

    assert pretrain.main(tiny_args(corpus, tmp_path / "one", "--cpu", "--steps", "4")) == 0
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "runners.pretrain",
         *tiny_args(corpus, tmp_path / "two", "--cpu", "--steps", "4")],
        cwd=Path(__file__).resolve().parents[1], env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"},
        capture_output=True, text=True, timeout=240)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    one, two = (load_file(tmp_path / name / "model" / "model.safetensors") for name in ("one", "two"))
    assert one.keys() == two.keys()
    difference = max(float((one[k] - two[k]).abs().max()) for k in one)
    assert difference < 1e-5, difference
    # The tolerance is far below what a changed step makes: the same run at another learning rate.
    assert pretrain.main(tiny_args(corpus, tmp_path / "other", "--cpu", "--steps", "4", "--lr", "1e-3")) == 0
    other = load_file(tmp_path / "other" / "model" / "model.safetensors")
    assert max(float((one[k] - other[k]).abs().max()) for k in one) > 1e-3
