"""A model or tokenizer the runners cannot use is refused before any work: exit 2, one line, nothing written.

Each case gives `runners.finetune` (and `runners.pretrain` where it loads the same folders) a
broken copy of the shipped embedded model: a path that does not exist, no weights, truncated
weights, a config of another model type, no tokenizer files. Every test asserts the exit code,
the one line on stderr, that no model was built and nothing trained, and that the output folder
was never made.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import safetensors
from safetensors.torch import load_file

from conftest import one_line_exit_2

import runners.finetune.run
from runners import finetune, pretrain
from runners.embedded import MODEL_DIR
from runners.finetune.model import (ModelLoadError, UNKNOWN_WORDS_LIMIT, check_model_folder, check_tokenizer_covers,
                                    load_tokenizer, safetensors_problem, unknown_word_share)

TINY = ["d_model=32", "d_kv=8", "d_ff=64", "num_layers=1", "num_heads=4"]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """Copies of the embedded model: intact, and broken in one way each."""
    root = tmp_path_factory.mktemp("models")
    folders = {name: root / name for name in ("intact", "no-tokenizer", "no-weights", "truncated", "other-type",
                                              "undeclared-type")}
    for folder in folders.values():
        shutil.copytree(MODEL_DIR, folder)
    (folders["no-tokenizer"] / "tokenizer.json").unlink()
    (folders["no-weights"] / "model.safetensors").unlink()
    weights = folders["truncated"] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    config = json.loads((folders["other-type"] / "config.json").read_text())
    (folders["other-type"] / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))  # not seq2seq
    (folders["undeclared-type"] / "config.json").write_text(json.dumps({**config, "model_type": "xlnet"}))  # no family
    folders["missing"] = root / "does-not-exist"
    return folders


@pytest.fixture
def no_work(monkeypatch) -> list[str]:
    """Records any model build or training that starts (there must be none)."""
    started: list[str] = []

    def forbidden(what):
        def record(*args, **kwargs):
            started.append(what)
            raise AssertionError(f"{what} started")
        return record

    monkeypatch.setattr(runners.finetune.run, "build_model", forbidden("build_model"))
    monkeypatch.setattr(runners.finetune.run, "train", forbidden("train"))  # --one-base trains through it too
    return started


def finetune_args(out: Path, *extra: str) -> list[str]:
    return ["--task", "embedded-sst2", "--epochs", "1", "--max-train", "16", "--output-dir", str(out), "--no-progress",
            *extra]


@pytest.mark.parametrize("case, needles", [
    ("missing", ["the path does not exist"]),
    ("no-weights", ["no model weights", "model.safetensors", "--random-init"]),
    ("truncated", ["model.safetensors is damaged", "truncated"]),
    ("undeclared-type", ["model_type 'xlnet'", "no declared family", "t5, mt5"]),
    ("no-tokenizer", ["cannot encode the training data", "100% of the words", "'<unk>'", "tokenizer.json"]),
])
def test_finetune_refuses_a_model_folder_it_cannot_use(models, case, needles, tmp_path, capsys, no_work):
    out = tmp_path / "out"
    code = finetune.main(finetune_args(out, "--model", str(models[case])))
    one_line_exit_2(code, capsys, f"--model {models[case]}", *needles)
    assert no_work == [] and not out.exists()


def test_the_intact_copy_passes_every_check(models):
    check_model_folder(str(models["intact"]))  # the control: the checks refuse only what is broken
    tokenizer = load_tokenizer(str(models["intact"]))
    check_tokenizer_covers(tokenizer, ["sst2 sentence: the sofa looked awful .", "negative"], "--model intact")


def test_random_init_needs_no_weights_but_still_a_config(models):
    check_model_folder(str(models["no-weights"]), weights=False)
    with pytest.raises(ModelLoadError, match="model_type 'bert'"):
        check_model_folder(str(models["other-type"]), weights=False)
    with pytest.raises(ModelLoadError, match="model_type 'xlnet', which no declared family covers"):
        check_model_folder(str(models["undeclared-type"]), weights=False, any_family=True)


def test_truncation_is_what_safetensors_itself_cannot_read(models):
    """The header check agrees with the safetensors library on both files (an independent reader)."""
    assert safetensors_problem(models["intact"] / "model.safetensors") is None
    assert load_file(models["intact"] / "model.safetensors")
    assert "truncated" in safetensors_problem(models["truncated"] / "model.safetensors")
    with pytest.raises(safetensors.SafetensorError):
        load_file(models["truncated"] / "model.safetensors")


def test_unknown_word_share_counts_words_that_hit_unk(models):
    tokenizer = load_tokenizer(str(models["no-tokenizer"]))  # what transformers builds without tokenizer.json
    texts = ["sst2 sentence: the sofa looked awful .", "negative", "a b c"]
    words = " ".join(texts).split()
    ids = [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(word)) for word in words]  # piece by piece, vocab lookup
    expected = sum(tokenizer.unk_token_id in word_ids for word_ids in ids) / len(words)
    assert unknown_word_share(tokenizer, texts) == expected > UNKNOWN_WORDS_LIMIT
    embedded = load_tokenizer(str(models["intact"]))
    assert unknown_word_share(embedded, ["the sofa 水 水"]) == 0.5  # two of four words are not in its vocabulary


def test_one_base_refuses_a_recipe_that_trains_the_base_itself(tmp_path, capsys, no_work):
    out = tmp_path / "out"
    code = finetune.main(finetune_args(out, "--one-base", "--recipe", "full-finetune", "--init-config", *TINY))
    one_line_exit_2(code, capsys, "--one-base", "'full-finetune'", "trains the base itself")
    assert no_work == [] and not out.exists()


@pytest.mark.parametrize("option, case, needles", [
    ("--tokenizer", "missing", ["the path does not exist"]),
    ("--tokenizer", "no-tokenizer", ["cannot encode the training data"]),
    ("--model", "missing", ["the path does not exist"]),
    ("--model", "no-weights", ["no model weights"]),
    ("--model", "truncated", ["model.safetensors is damaged"]),
    ("--model", "other-type", ["model_type 'bert'"]),
])
def test_pretrain_refuses_a_tokenizer_or_model_folder_it_cannot_use(models, option, case, needles, tmp_path, capsys,
                                                                    monkeypatch):
    import runners.pretrain.loop
    from runners.pretrain.data import PretrainData

    started: list[str] = []
    monkeypatch.setattr(PretrainData, "build", lambda *a, **k: started.append("data"))
    monkeypatch.setattr(runners.pretrain.loop, "pretrain", lambda *a, **k: started.append("pretrain"))
    out = tmp_path / "out"
    code = pretrain.main(["--corpus", str(MODEL_DIR.parent / "corpus.txt.gz"), "--max-documents", "50",
                          option, str(models[case]), "--output-dir", str(out)])
    one_line_exit_2(code, capsys, f"{option} {models[case]}", *needles)
    assert started == [] and not out.exists()
