"""An unreachable Hub: the first failure switches the process offline with one note, no retries.

The Hub is made unreachable with HF_ENDPOINT=http://127.0.0.1:9 (a closed local port); nothing
here touches the network. How long it takes is in benchmarks/bench_startup.py, not here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from runners import hub

ROOT = Path(__file__).resolve().parents[1]
CLOSED_PORT = "http://127.0.0.1:9"


@pytest.fixture
def unreachable_hub(monkeypatch):
    """HF_ENDPOINT on a closed port, no proxy, online; everything prepare_hub changes restored after."""
    monkeypatch.setenv("HF_ENDPOINT", CLOSED_PORT)
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(variable, raising=False)
    for variable in hub.OFFLINE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(hub, "_reachable", None)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", False)
    yield


def test_the_first_failure_goes_offline_with_one_note(unreachable_hub, capsys):
    from huggingface_hub import constants, is_offline_mode

    assert hub.prepare_hub("google-t5/t5-small") is False
    assert hub.prepare_hub("nyu-mll/glue") is False  # tried once per process: no second note
    notes = capsys.readouterr().err.strip().splitlines()
    assert len(notes) == 1 and notes[0].startswith(f"note: the Hugging Face Hub ({CLOSED_PORT}) cannot be reached")
    assert all(os.environ[variable] == "1" for variable in hub.OFFLINE_VARIABLES)
    assert constants.HF_HUB_OFFLINE is True and is_offline_mode()


def test_hf_hub_offline_is_honoured_without_trying_the_hub(unreachable_hub, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_connection(*args, **kwargs):
        raise AssertionError("the Hub was tried although HF_HUB_OFFLINE=1")

    monkeypatch.setattr(socket, "create_connection", no_connection)
    assert hub.prepare_hub("google-t5/t5-small") is False
    assert capsys.readouterr().err == ""


def test_a_local_folder_never_tries_the_hub(unreachable_hub, monkeypatch, tmp_path):
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("the Hub was tried"))
    assert hub.prepare_hub(tmp_path) is False and hub._reachable is None


def test_a_reachable_endpoint_stays_online(unreachable_hub, monkeypatch):
    with socket.socket() as server:  # a local port that accepts: the Hub is "reachable"
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert hub.prepare_hub("google-t5/t5-small") is True
    assert "HF_HUB_OFFLINE" not in os.environ


def test_the_proxy_is_what_is_tried_when_one_is_set(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert hub.hub_address("https://huggingface.co") == ("127.0.0.1", 3128)


def test_a_hub_model_name_fails_at_once_with_the_runners_message(unreachable_hub, capsys):
    from runners.finetune.model import ModelLoadError, load_tokenizer

    with pytest.raises(ModelLoadError, match="--model 't5-surgery-tests/no-such-model': could not load its tokenizer"):
        load_tokenizer("t5-surgery-tests/no-such-model")  # a name no cache holds
    assert "cannot be reached" in capsys.readouterr().err


def test_a_glue_task_without_local_data_fails_at_once_without_retries(tmp_path):
    """The finetune runner end to end (the 31 s of Hub retries before its message are gone)."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_ENDPOINT": CLOSED_PORT,
                   "HF_HOME": str(tmp_path / "hf-home")}
    for variable in (*hub.OFFLINE_VARIABLES, "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        environment.pop(variable, None)
    done = subprocess.run([sys.executable, "-m", "runners.finetune", "--task", "sst-2", "--output-dir",
                           str(tmp_path / "out")], cwd=tmp_path, env=environment, capture_output=True, text=True,
                          timeout=300)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 2 and "Retry" not in done.stderr, done.stderr
    assert lines[0].startswith(f"note: the Hugging Face Hub ({CLOSED_PORT}) cannot be reached")
    assert lines[1].startswith("error: task 'sst2': could not load 'nyu-mll/glue' config 'sst2' from the Hugging Face "
                               "Hub") and lines[1].endswith("give a data folder with local train/validation files instead")
