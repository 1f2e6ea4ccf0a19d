"""A checkpoint's integrity covers everything that decides the function, and nothing is lost on a save.

* the record (recipe, options, groups, base fingerprint) has a checksum: an edited option is refused;
* the base's forward-relevant config fields are recorded: a base that computes something else
  with the same weights (T5Config(tie_word_embeddings=False): no output rescaling) is refused;
* a record without its base-weight fingerprint is refused unless allow_other_base=True;
* files written before all this (tests/data/adapter-before-integrity, written by commit c4885c4)
  still load, and one that claims the new version but lacks a field is refused;
* a save over a checkpoint interrupted between its two renames: the earlier checkpoint is put
  back, and where a process died there, load_adapter names the surviving copy and how to restore it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import surgery
from conftest import tiny_model
from test_checkpoint_integrity import refused  # the model-untouched refusal check, shared
from surgery import CheckpointError
from surgery.checkpoint import CONFIG_FILE, WEIGHTS_FILE
from surgery.naming import live_name
from surgery.verify import record_digest

OLD = Path(__file__).parent / "data" / "adapter-before-integrity"
SMALL = {"name": "small", "method": "adapter", "sites": ["after_ffn"], "options": {"bottleneck": 4}, "train": ["layer_norms"]}
IDS = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 1]])


def outputs(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(input_ids=IDS, decoder_input_ids=IDS).logits


def saved_from(model: torch.nn.Module, folder: Path, recipe=SMALL) -> Path:
    torch.manual_seed(7)
    surgery.apply(model, recipe)
    with torch.no_grad():
        for parameter in (p for p in model.parameters() if p.requires_grad):
            parameter.add_(torch.randn_like(parameter) * 0.05)
    return surgery.save_adapter(model, folder)


def edit_record(folder: Path, edit) -> None:
    config = json.loads((folder / CONFIG_FILE).read_text())
    edit(config)
    (folder / CONFIG_FILE).write_text(json.dumps(config))


@pytest.fixture(scope="module")
def saved_once(tmp_path_factory) -> Path:
    return saved_from(tiny_model(seed=3), tmp_path_factory.mktemp("saved") / "ckpt")


@pytest.fixture
def saved(saved_once, tmp_path) -> Path:
    """A fresh copy per test (tests edit it) of the checkpoint saved once for the module."""
    return Path(shutil.copytree(saved_once, tmp_path / "ckpt"))


def test_an_edited_option_is_refused(saved):
    edit_record(saved, lambda c: c["recipe"]["options"].update(activation="relu"))
    refused(saved, r"t5_surgery_adapter\.json: the record .* does not match its checksum")


@pytest.mark.parametrize("edit", [
    lambda c: c["groups"].popitem(),
    lambda c: c["recipe"].update(sites=["after_self_attention"]),
    lambda c: c["base"].update(layer_norm_epsilon=1e-3),
], ids=["groups", "sites", "base-field"])
def test_any_edit_of_what_decides_the_function_is_refused(saved, edit):
    edit_record(saved, edit)
    refused(saved, "does not match its checksum")


def test_labels_may_be_edited(saved):
    edit_record(saved, lambda c: (c["recipe"].update(description="mine"), c.update(base_model={"name_or_path": "/here"})))
    model = tiny_model(seed=3)
    surgery.load_adapter(model, saved)
    assert surgery.report(model).trainable > 0


@pytest.mark.parametrize("field", ["record_checksum", "base_weights", "checksums"])
def test_a_file_claiming_the_new_version_without_a_field_is_refused(saved, field):
    edit_record(saved, lambda c: c.pop(field))
    refused(saved, f"the field '{field}' is missing, but integrity_version 1 requires it")


def test_a_file_claiming_the_new_version_without_a_base_field_is_refused(saved):
    def drop(config):
        del config["base"]["scale_decoder_outputs"]
        config["record_checksum"] = record_digest(config)   # consistent: only the version's rule catches it
    edit_record(saved, drop)
    refused(saved, "the base fingerprint lacks scale_decoder_outputs")


def test_an_unknown_integrity_version_is_refused(saved):
    edit_record(saved, lambda c: c.update(integrity_version=2))
    refused(saved, "integrity_version 2 is not one this t5-surgery reads")


def test_a_base_without_output_rescaling_is_refused(tmp_path):
    """transformers 5: T5Config(tie_word_embeddings=False) keeps the weights tied but stops rescaling."""
    folder = saved_from(tiny_model(seed=3), tmp_path / "ckpt")
    other = tiny_model(seed=3, tie_word_embeddings=False)
    assert all(torch.equal(a, b) for a, b in zip(other.state_dict().values(), tiny_model(seed=3).state_dict().values()))
    assert not torch.equal(outputs(other), outputs(tiny_model(seed=3)))   # same weights, another function
    refused(folder, "scale_decoder_outputs: checkpoint True, model False", model=other)


@pytest.mark.parametrize("field, value", [("layer_norm_epsilon", 1e-3), ("relative_attention_max_distance", 64),
                                          ("feed_forward_proj", "gelu")])
def test_other_forward_fields_are_compared(tmp_path, field, value):
    folder = saved_from(tiny_model(seed=3), tmp_path / "ckpt")
    refused(folder, f"{field}: checkpoint", model=tiny_model(seed=3, **{field: value}))


def test_a_record_without_base_weights_is_refused_unless_allowed(saved):
    edit_record(saved, lambda c: (c.pop("base_weights"), c.pop("integrity_version"), c.pop("record_checksum")))
    error = refused(saved, "records no fingerprint of its base weights")
    assert "allow_other_base=True" in str(error)
    model = tiny_model(seed=3)
    surgery.load_adapter(model, saved, allow_other_base=True)
    tensors = load_file(saved / WEIGHTS_FILE)
    assert all(torch.equal(model.state_dict()[live_name(n, "default")], t) for n, t in tensors.items())


def test_a_file_written_before_integrity_versions_still_loads(tmp_path):
    record = json.loads((OLD / CONFIG_FILE).read_text())
    assert "integrity_version" not in record and "scale_decoder_outputs" not in record["base"]   # the old writer's
    model = tiny_model(seed=3)
    surgery.load_adapter(model, OLD)
    # What is loaded is bit-exact: every stored tensor lands unchanged in the model.
    tensors = load_file(OLD / WEIGHTS_FILE)
    assert tensors and all(torch.equal(model.state_dict()[live_name(n, "default")], t) for n, t in tensors.items())
    expected = torch.load(Path(str(OLD) + "-logits.pt"))       # the old writer's model's outputs
    # The logits were computed on the machine that wrote the fixture. float32 matmuls round differently
    # with the CPU's BLAS kernels (on an AMD EPYC AVX2 CPU here, 697 of 768 logits differ by up to 1.4e-6,
    # a few ulps of |logits| <= 6.2; MKL_CBWR alone changes them the same way), so equality is only up to
    # rounding: 1e-5 is ~20 ulps of the largest logit. A wrong load (adapter missing, output rescaling
    # lost) moves them by far more, and the base's own logits are checked to be outside that tolerance.
    torch.testing.assert_close(outputs(model), expected, rtol=1e-5, atol=1e-5)
    assert (outputs(tiny_model(seed=3)) - expected).abs().max() > 1e-2           # the adapter matters
    surgery.load_adapter(tiny_model(seed=3), OLD)             # and it still refuses another base
    with pytest.raises(CheckpointError, match="base with other weights"):
        surgery.load_adapter(tiny_model(seed=4), OLD)
    copy = shutil.copytree(OLD, tmp_path / "old")            # its missing fields are not checked; its recorded ones are
    edit_record(copy, lambda c: c["base"].update(d_ff=256))
    refused(copy, "d_ff: checkpoint 256, model 128")


def test_a_save_interrupted_between_its_renames_puts_the_earlier_checkpoint_back(saved, monkeypatch):
    before = {p.name: p.read_bytes() for p in saved.iterdir()}
    model = tiny_model(seed=5)
    surgery.apply(model, SMALL)
    real, calls = Path.rename, [0]

    def rename(self, target):
        calls[0] += 1
        if calls[0] == 2:                                     # the first moved the old folder aside
            raise KeyboardInterrupt
        return real(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        surgery.save_adapter(model, saved)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in saved.iterdir()} == before
    assert not [p for p in saved.parent.iterdir() if p.name.startswith(".")]


def test_load_names_the_copy_a_killed_save_left(saved):
    aside = saved.parent / f".{saved.name}.replaced-0123abcd"
    saved.rename(aside)                                       # what a process killed between the renames leaves
    error = refused(saved, "a save over it was interrupted")
    assert f"survives as {aside}" in str(error) and f"mv {aside} {saved}" in str(error)
    with pytest.raises(CheckpointError, match="survives as"):
        surgery.from_pretrained(saved)
    aside.rename(saved)                                       # following the advice restores it
    surgery.load_adapter(tiny_model(seed=3), saved)
