"""Checkpoint corruption and misuse: each a CheckpointError naming the file, the model untouched.

Truncated files, a flipped byte, NaN values, int32 tensors, a base with other weights (refused
unless allow_other_base=True), broken configs; and the save side: a file in the way, a folder of
other files, stray files of an earlier checkpoint, a meta model, a hand-made Recipe.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import surgery
from conftest import tiny_model
from surgery import CheckpointError
from surgery.checkpoint import CONFIG_FILE as CONFIG
from surgery.checkpoint import WEIGHTS_FILE as WEIGHTS
from surgery.naming import live_name
from surgery.verify import record_digest, tensor_manifest


@pytest.fixture(scope="module")
def saved_once(tmp_path_factory) -> Path:
    model = tiny_model(seed=3)
    surgery.apply(model, "adapter")
    with torch.no_grad():
        for parameter in (p for p in model.parameters() if p.requires_grad):
            parameter.add_(torch.randn_like(parameter) * 0.01)
    return surgery.save_adapter(model, tmp_path_factory.mktemp("saved") / "ckpt")


@pytest.fixture
def saved(saved_once, tmp_path) -> Path:
    """A fresh copy per test (tests edit it) of the checkpoint saved once for the module."""
    return Path(shutil.copytree(saved_once, tmp_path / "ckpt"))


def refused(folder: Path, match: str, model=None, **kwargs) -> CheckpointError:
    model = model if model is not None else tiny_model(seed=3)
    before = {n: t.clone() for n, t in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=match) as error:
        surgery.load_adapter(model, folder, **kwargs)
    after = model.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[n], before[n]) for n in before)
    assert not hasattr(model, "surgery")
    return error.value


def rewrite_weights(folder: Path, edit, update_manifest: bool) -> None:
    tensors = load_file(folder / WEIGHTS)
    edit(tensors)
    save_file(tensors, folder / WEIGHTS)
    if update_manifest:  # a consistent forgery: only the checks after the checksum can catch it
        config = json.loads((folder / CONFIG).read_text())
        config["checksums"] = tensor_manifest(tensors)
        config["record_checksum"] = record_digest(config)
        (folder / CONFIG).write_text(json.dumps(config))


def test_the_config_holds_a_checksum_of_every_tensor(saved):
    config = json.loads((saved / CONFIG).read_text())
    tensors = load_file(saved / WEIGHTS)
    assert config["format"] == "t5-surgery-adapter/2" and set(config["checksums"]) == set(tensors)
    import hashlib
    name = sorted(tensors)[0]
    flat = tensors[name].contiguous().reshape(-1)
    expected = hashlib.sha256(f"float32{list(tensors[name].shape)}".encode() + flat.numpy().tobytes()).hexdigest()
    assert config["checksums"][name] == expected[:32]


@pytest.mark.parametrize("keep", [0, 100, -200], ids=["empty", "header-only", "tail-cut"])
def test_truncated_weights_file(saved, keep):
    data = (saved / WEIGHTS).read_bytes()
    (saved / WEIGHTS).write_bytes(data[:keep] if keep >= 0 else data[:keep])
    error = refused(saved, WEIGHTS)
    assert "safetensors" in str(error)


def test_flipped_data_byte_fails_the_checksum(saved):
    data = bytearray((saved / WEIGHTS).read_bytes())
    data[-3] ^= 0x10  # inside the last tensor's bytes
    (saved / WEIGHTS).write_bytes(bytes(data))
    refused(saved, "does not match its checksum")


def test_nan_values_are_refused_even_with_a_matching_checksum(saved):
    def poison(tensors):
        name = sorted(tensors)[0]
        tensors[name] = tensors[name].clone()
        tensors[name].view(-1)[0] = float("nan")

    rewrite_weights(saved, poison, update_manifest=True)
    refused(saved, "non-finite values")


def test_int32_tensors_are_refused_even_with_a_matching_checksum(saved):
    rewrite_weights(saved, lambda t: t.update({n: v.to(torch.int32) for n, v in t.items()}), update_manifest=True)
    refused(saved, "is int32, the model holds float32 there")


def test_int32_tensors_against_the_manifest(saved):
    rewrite_weights(saved, lambda t: t.update({n: v.to(torch.int32) for n, v in t.items()}), update_manifest=False)
    refused(saved, r"\(int32 \[.*\]\) does not match its checksum")


def test_a_base_with_other_weights_is_refused_unless_allowed(saved):
    error = refused(saved, "base with other weights", model=tiny_model(seed=4))
    assert "allow_other_base=True" in str(error) and "sampled base weights differ" in str(error)
    other = tiny_model(seed=4)
    surgery.load_adapter(other, saved, allow_other_base=True)
    tensors = load_file(saved / WEIGHTS)
    assert all(torch.equal(other.state_dict()[live_name(n, "default")], t) for n, t in tensors.items())


def test_one_changed_base_tensor_is_enough(saved):
    model = tiny_model(seed=3)
    with torch.no_grad():
        model.decoder.block[1].layer[2].DenseReluDense.wo.weight.mul_(1.5)
    refused(saved, r"decoder\.block\.1\.layer\.2\.DenseReluDense\.wo\.weight", model=model)


def test_the_same_base_in_bfloat16_loads(saved):
    model = tiny_model(seed=3).to(torch.bfloat16)
    surgery.load_adapter(model, saved)
    assert model.encoder.block[0].spliced.default.after_ffn.down.weight.dtype == torch.bfloat16


def test_another_architecture_is_named(saved):
    refused(saved, "d_ff: checkpoint 128, model 256", model=tiny_model(d_ff=256))


@pytest.mark.parametrize("edit, match", [
    (lambda c: c.pop("base"), "the field 'base' is missing"),
    (lambda c: c.pop("recipe"), "the field 'recipe' is missing"),
    (lambda c: c.update(base="t5"), "the field 'base' holds str"),
    (lambda c: c.update(format="something/9"), "format 'something/9'"),
    (lambda c: c.update(checksums=[]), "the field 'checksums' holds list"),
])
def test_broken_config_fields(saved, edit, match):
    config = json.loads((saved / CONFIG).read_text())
    edit(config)
    (saved / CONFIG).write_text(json.dumps(config))
    error = refused(saved, match)
    assert CONFIG in str(error)


@pytest.mark.parametrize("content, match", [(b"{not json", "not valid JSON"), (b"\xff\xfe\x00", "not UTF-8"),
                                            (b"[1, 2]", "expected a JSON object")])
def test_unreadable_config(saved, content, match):
    (saved / CONFIG).write_bytes(content)
    refused(saved, match)


def test_missing_files_and_wrong_paths(saved, tmp_path):
    (saved / WEIGHTS).unlink()
    refused(saved, "has a config but no weights")
    refused(tmp_path / "nowhere", "is not a folder")
    (tmp_path / "empty").mkdir()
    refused(tmp_path / "empty", "not an adapter checkpoint folder")
    (tmp_path / "a-file").write_text("x")
    refused(tmp_path / "a-file", "is not a folder")


def test_an_edited_description_still_loads_into_the_applied_recipe(saved):
    config = json.loads((saved / CONFIG).read_text())
    config["recipe"]["description"] = "edited by hand"
    (saved / CONFIG).write_text(json.dumps(config))
    model = tiny_model(seed=3)
    surgery.apply(model, "adapter")
    surgery.load_adapter(model, saved)


def test_a_real_recipe_difference_is_named(saved):
    model = tiny_model(seed=3)
    surgery.apply(model, {**surgery.load_recipe("adapter").to_dict(), "options": {"reduction_factor": 16}})
    with pytest.raises(CheckpointError, match=r"options\.reduction_factor: checkpoint 32, model 16"):
        surgery.load_adapter(model, saved)


def test_save_refuses_paths_it_cannot_use(tmp_path):
    model = tiny_model()
    surgery.apply(model, "adapter")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="it is a file"):
        surgery.save_adapter(model, tmp_path / "file")
    with pytest.raises(CheckpointError, match="is a file, not a folder"):
        surgery.save_adapter(model, tmp_path / "file" / "inside")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    with pytest.raises(CheckpointError, match="holds other files"):
        surgery.save_adapter(model, tmp_path / "notes")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"
    with pytest.raises(CheckpointError, match="no surgery was applied"):
        surgery.save_adapter(tiny_model(), tmp_path / "x")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_save_into_an_unwritable_folder(tmp_path):
    model = tiny_model()
    surgery.apply(model, "adapter")
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(CheckpointError, match="cannot save"):
            surgery.save_adapter(model, tmp_path / "ckpt")
    finally:
        tmp_path.chmod(0o700)


def test_saving_over_a_checkpoint_replaces_it_whole(saved):
    (saved / "stale.txt").write_text("from an earlier save")
    model = tiny_model(seed=3)
    surgery.apply(model, "pfeiffer-adapter")
    surgery.save_adapter(model, saved)
    assert sorted(p.name for p in saved.iterdir()) == sorted(["README.md", CONFIG, WEIGHTS])
    assert [p.name for p in saved.parent.iterdir() if p.name.startswith(".")] == []  # no staging left behind
    assert json.loads((saved / CONFIG).read_text())["recipe"]["name"] == "pfeiffer-adapter"


def test_meta_models_neither_save_nor_load(saved, tmp_path):
    meta = tiny_model(seed=3).to("meta")
    with pytest.raises(CheckpointError, match="meta device"):
        surgery.load_adapter(meta, saved)
    surgery.apply(meta, "adapter")
    with pytest.raises(CheckpointError, match="meta device"):
        surgery.save_adapter(meta, tmp_path / "meta")


def test_non_finite_values_are_not_saved(tmp_path):
    model = tiny_model()
    surgery.apply(model, "adapter")
    with torch.no_grad():
        model.encoder.block[0].spliced.default.after_ffn.up.bias[0] = float("inf")
    with pytest.raises(CheckpointError, match="non-finite.*encoder.block.0.spliced.after_ffn.up.bias"):
        surgery.save_adapter(model, tmp_path / "ckpt")
    assert not (tmp_path / "ckpt").exists()


def test_a_hand_made_recipe_round_trips(tmp_path, batch):
    recipe = surgery.Recipe(name="hand-made", method="adapter", options={"bottleneck": 4}, sites=("after_ffn",),
                            layers={"decoder": [1]})
    model = tiny_model(seed=5)
    report = surgery.report(surgery.apply(model, recipe))
    folder = surgery.save_adapter(model, tmp_path / "ckpt")
    fresh = tiny_model(seed=5)
    assert surgery.load_adapter(fresh, folder).trainable == report.trainable
    assert [n for n, _ in fresh.named_modules() if n.endswith("spliced.default.after_ffn")] == \
        ["encoder.block.0.spliced.default.after_ffn", "encoder.block.1.spliced.default.after_ffn",
         "decoder.block.1.spliced.default.after_ffn"]
    with torch.no_grad():
        assert torch.equal(fresh(**batch).logits, model(**batch).logits)
