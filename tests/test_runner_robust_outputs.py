"""Every runner's output folder: one lock, one overwrite policy, bad arguments refused before the work.

`runners.pretrain` and `runners.efficiency` claim ``--output-dir`` as `runners.finetune` does
(`runners.output_folder`): a second process on a folder in use is refused, an earlier run is
replaced only with ``--overwrite``, a file given as the folder is refused. Efficiency's
``--scores`` is read before any timing. Every refusal is exit 2 with one line on stderr, nothing
long started, and the folder's files byte for byte as they were.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import runners.efficiency.cli
import runners.pretrain.loop
from runners import efficiency, pretrain
from runners.embedded import CORPUS_FILE
from runners.output_folder import LOCK_FILE
from test_runner_robust_models import one_line_exit_2  # exit 2, one line, no traceback: shared

ROOT = Path(__file__).resolve().parents[1]
TINY = ["d_model=32", "d_kv=8", "d_ff=64", "num_layers=1", "num_heads=2", "dropout_rate=0.0"]


def files(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in folder.rglob("*") if path.is_file() and path.name != LOCK_FILE}


class HeldLock:
    """Another process holding the output folder's lock (as a run still training would)."""

    def __init__(self, folder: Path, runner: str):
        self.process = subprocess.Popen(
            [sys.executable, "-c", "import time; from runners.output_folder import OutputLock; "
             f"lock = OutputLock({str(folder)!r}, {runner!r}); lock.acquire(); print('locked', flush=True); "
             "time.sleep(120)"], cwd=ROOT, stdout=subprocess.PIPE, text=True)

    def __enter__(self) -> int:
        assert self.process.stdout.readline().strip() == "locked"
        return self.process.pid

    def __exit__(self, *exc) -> None:
        self.process.kill()
        self.process.wait()


# ---- pretrain ------------------------------------------------------------------------------------------------

def pretrain_args(out: Path, *extra: str, config: list[str] = TINY) -> list[str]:
    return ["--corpus", str(CORPUS_FILE), "--max-documents", "200", "--config", *config, "--steps", "4",
            "--batch-size", "4", "--chunk-length", "24", "--eval-every", "2", "--save-every", "2", "--threads", "1",
            "--no-progress", "--precision", "no", "--output-dir", str(out), *extra]


@pytest.fixture
def no_pretraining(monkeypatch) -> list[str]:
    from runners.pretrain.data import PretrainData

    started: list[str] = []
    monkeypatch.setattr(PretrainData, "build", lambda *a, **k: started.append("data"))
    monkeypatch.setattr(runners.pretrain.loop, "pretrain", lambda *a, **k: started.append("pretrain"))
    return started


def test_pretrain_refuses_a_vocabulary_smaller_than_the_tokenizer(tmp_path, capsys, no_pretraining):
    out = tmp_path / "out"
    code = pretrain.main(pretrain_args(out, config=[*TINY, "vocab_size=10"]))
    one_line_exit_2(code, capsys, "--config vocab_size=10", "tokenizer's 520 tokens", "at least 520")
    assert no_pretraining == [] and not out.exists()


def test_pretrain_refuses_a_file_as_output_dir(tmp_path, capsys, no_pretraining):
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    one_line_exit_2(pretrain.main(pretrain_args(file)), capsys, f"--output-dir {file} is a file")
    one_line_exit_2(pretrain.main(pretrain_args(file / "out")), capsys, f"{file} is a file")
    assert no_pretraining == [] and file.read_text() == "mine"


@pytest.mark.slow
def test_pretrain_folder_lock_and_overwrite_policy(tmp_path, capsys):
    out = tmp_path / "out"
    assert pretrain.main(pretrain_args(out, "--stop-after-steps", "2")) == 0
    capsys.readouterr()
    before = files(out)
    assert (out / "last" / "training_state.pt").is_file()
    with HeldLock(out, "runners.pretrain") as pid:  # e.g. the first run still training
        one_line_exit_2(pretrain.main(["--resume", str(out), "--no-progress"]), capsys,
                        "is in use by another runners.pretrain process", f"pid {pid}")
    assert files(out) == before
    one_line_exit_2(pretrain.main(pretrain_args(out)), capsys, "holds an earlier invocation", "--overwrite")
    assert files(out) == before
    assert pretrain.main(["--resume", str(out), "--no-progress"]) == 0  # the lock went with its process
    capsys.readouterr()
    assert (out / "model" / "model.safetensors").is_file()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("x")
    one_line_exit_2(pretrain.main(pretrain_args(foreign)), capsys, "already holds files (thesis.tex)")
    assert sorted(p.name for p in foreign.iterdir()) == ["thesis.tex"]


@pytest.mark.slow
def test_pretrain_overwrite_replaces_the_earlier_run(tmp_path, capsys):
    out = tmp_path / "out"
    assert pretrain.main(pretrain_args(out, "--stop-after-steps", "2")) == 0
    (out / "stale.txt").write_text("from the earlier run")
    assert pretrain.main(pretrain_args(out, "--overwrite")) == 0
    assert not (out / "stale.txt").exists() and (out / "model" / "model.safetensors").is_file()


# ---- efficiency ----------------------------------------------------------------------------------------------

def efficiency_args(out: Path, *extra: str) -> list[str]:
    return ["--config", "tiny", "--batch-size", "2", "--source-length", "8", "--target-length", "2", "--recipes",
            "full-finetune", "--repeats", "1", "--warmup", "0", "--large-apply", "none", "--output-dir", str(out),
            *extra]


def efficiency_exit(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as stopped:
        efficiency.main(argv)
    return stopped.value.code


@pytest.fixture
def no_timing(monkeypatch) -> list[str]:
    started: list[str] = []
    monkeypatch.setattr(runners.efficiency.cli, "measure", lambda *a, **k: started.append("measure"))
    return started


@pytest.mark.parametrize("content, needles", [
    (None, ["no such file"]),
    (b"recipe,score\nfull-finetune,80.0\ncompacter++", ["line 3", "1 field(s) where the header has 2", "truncated"]),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", ["not a text file"]),
    (b"recipe,score\nfull-\x00finetune,80.0\n", ["not a text file"]),
    (b"name,accuracy\nfull-finetune,80.0\n", ["missing column(s)", "'recipe'", "found ['name', 'accuracy']"]),
    (b"recipe,score\nfull-finetune,eighty\n", ["line 2", "'eighty' is not a number"]),
    (b"recipe,score\n", ["no scores in it"]),
])
def test_efficiency_reads_scores_before_any_timing(tmp_path, capsys, no_timing, content, needles):
    scores = tmp_path / "scores.csv"
    if content is not None:
        scores.write_bytes(content)
    out = tmp_path / "out"
    one_line_exit_2(efficiency_exit(efficiency_args(out, "--scores", str(scores))), capsys, f"--scores {scores}",
                    *needles)
    assert no_timing == [] and not out.exists()


def test_efficiency_refuses_a_file_as_output_dir(tmp_path, capsys, no_timing):
    file = tmp_path / "efficiency-results"
    file.write_text("mine")
    one_line_exit_2(efficiency_exit(efficiency_args(file)), capsys, f"--output-dir {file} is a file")
    assert no_timing == [] and file.read_text() == "mine"


@pytest.mark.slow
def test_efficiency_folder_lock_and_overwrite_policy(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    scores = tmp_path / "scores.csv"
    scores.write_text("recipe,score\nfull-finetune,80.0\n")
    paths = efficiency.main(efficiency_args(out, "--scores", str(scores)))
    capsys.readouterr()
    assert paths["csv"].is_file() and paths["figure"].is_file()
    before = files(out)
    started: list[str] = []
    measure = runners.efficiency.cli.measure
    monkeypatch.setattr(runners.efficiency.cli, "measure", lambda *a, **k: started.append("measure") or measure(*a, **k))
    one_line_exit_2(efficiency_exit(efficiency_args(out)), capsys, "holds an earlier invocation of runners.efficiency",
                    "--overwrite")
    with HeldLock(out, "runners.efficiency") as pid:
        one_line_exit_2(efficiency_exit(efficiency_args(out, "--overwrite")), capsys, "is in use by another", f"pid {pid}")
    assert started == [] and files(out) == before
    efficiency.main(efficiency_args(out, "--overwrite"))
    assert started == ["measure"] and not (out / "figure1.png").exists()  # replaced: the new run drew no figure


def test_efficiency_treats_a_folder_of_its_older_outputs_as_an_earlier_run(tmp_path, capsys, no_timing):
    out = tmp_path / "out"  # written before efficiency saved arguments.json: its tables alone
    out.mkdir()
    (out / "efficiency.csv").write_text("recipe\n")
    one_line_exit_2(efficiency_exit(efficiency_args(out)), capsys, "holds an earlier invocation", "--overwrite")
    assert no_timing == [] and sorted(p.name for p in out.iterdir()) == ["efficiency.csv"]
