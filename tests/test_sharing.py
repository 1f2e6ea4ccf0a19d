"""Adapters people can share: save_pretrained round trip, our own file format (not PEFT's), the
model card, the base's name and revision, and the Hub (a local folder stands in for it)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

import surgery
from conftest import tiny_model
from surgery import CheckpointError
from surgery.checkpoint import CONFIG_FILE, LEGACY_CONFIG_FILE, LEGACY_WEIGHTS_FILE, WEIGHTS_FILE
from test_model_classes import inputs_for, loss_of, make, tensors_of

TINY_COMPACTER = {**surgery.load_recipe("compacter++").source, "options": {**surgery.load_recipe("compacter++").options, "n": 2}}


def trained(model, class_name="T5ForConditionalGeneration", steps=2):
    """A few Adam steps, so every trained tensor differs from its initialisation."""
    model.train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        loss_of(class_name, model, inputs_for(class_name)).backward()
        optimizer.step()
    return model.eval()


def spliced(recipe=None, **kwargs):
    model = tiny_model(**kwargs)
    surgery.apply(model, recipe or TINY_COMPACTER)
    return model


def outputs(model, class_name):
    with torch.no_grad():
        return tensors_of(model(**inputs_for(class_name)))


def assert_same_outputs(a, b, class_name):
    expected, actual = outputs(a, class_name), outputs(b, class_name)
    assert expected.keys() == actual.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("class_name", ["T5ForConditionalGeneration", "MT5ForSequenceClassification", "UMT5EncoderModel"])
def test_save_pretrained_then_from_pretrained_gives_the_same_model(class_name, tmp_path):
    model = make(class_name)
    head = ["head"] if class_name.endswith("Classification") else []
    surgery.apply(model, {**surgery.load_recipe("compacter++").source, "train": ["layer_norms", *head]})
    trained(model, class_name)
    model.save_pretrained(tmp_path / "saved")

    again = surgery.from_pretrained(tmp_path / "saved", attn_implementation="eager").eval()
    assert type(again) is type(model)
    assert_same_outputs(model, again, class_name)
    assert {n for n, p in again.named_parameters() if p.requires_grad} == {n for n, p in model.named_parameters() if p.requires_grad}
    # The untouched base would answer differently: the round trip really carried the adapter.
    with torch.no_grad():
        base = outputs(make(class_name), class_name)
    assert any(not torch.allclose(base[k], outputs(again, class_name)[k], atol=1e-4) for k in base)
    assert not (tmp_path / "saved" / "README.md").exists()   # transformers' own save: no card, no adapter files
    surgery.save_pretrained(model, tmp_path / "with-card")
    card = (tmp_path / "with-card" / "README.md").read_text()
    assert f'surgery.from_pretrained("{tmp_path / "with-card"}")' in card


def test_a_reloaded_model_saves_and_reloads_again(tmp_path):
    model = trained(spliced())
    model.save_pretrained(tmp_path / "one")
    again = surgery.from_pretrained(tmp_path / "one", attn_implementation="eager")
    again.save_pretrained(tmp_path / "two")             # the reloaded model records its adapters too
    assert_same_outputs(model, surgery.from_pretrained(tmp_path / "two", attn_implementation="eager").eval(),
                        "T5ForConditionalGeneration")


def test_our_files_are_not_peft_files(tmp_path):
    model = tiny_model()
    surgery.apply(model, TINY_COMPACTER)
    folder = surgery.save_adapter(model, tmp_path / "adapter")
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["README.md", CONFIG_FILE, WEIGHTS_FILE]
    # PEFT reads exactly these two names; neither exists, so no tool mistakes our folder for PEFT's.
    assert LEGACY_CONFIG_FILE not in names and LEGACY_WEIGHTS_FILE not in names
    record = json.loads((folder / CONFIG_FILE).read_text())
    assert record["library"] == "t5-surgery" and "peft_type" not in record


def test_a_peft_folder_gets_a_clear_message(tmp_path):
    folder = tmp_path / "peft-lora"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "base_model_name_or_path": "google-t5/t5-small", "r": 8, "target_modules": ["q", "v"]}))
    save_file({"base_model.model.encoder.block.0.layer.0.SelfAttention.q.lora_A.weight": torch.zeros(8, 64)},
              folder / "adapter_model.safetensors")
    model = tiny_model()
    for load in (lambda: surgery.load_adapter(model, folder), lambda: surgery.from_pretrained(folder)):
        with pytest.raises(CheckpointError, match=r"is a PEFT adapter \(peft_type 'LORA', base model 'google-t5/t5-small'\)"
                                                  r", not a t5-surgery adapter: load it with PEFT"):
            load()
    assert not hasattr(model, "surgery")


def test_a_transformers_model_folder_is_named_as_such(tmp_path):
    tiny_model().save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="not an adapter checkpoint folder.*holds a transformers model"):
        surgery.load_adapter(tiny_model(), tmp_path)


def test_the_model_card_names_recipe_counts_and_how_to_load(tmp_path):
    model = tiny_model()
    report = surgery.report(surgery.apply(model, TINY_COMPACTER))
    folder = surgery.save_adapter(model, tmp_path / "adapter")
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: t5-surgery\n")
    assert "# compacter++ adapter for T5ForConditionalGeneration" in card
    assert "name: compacter++" in card and "projection: phm" in card
    # Counts: independently, the numbers of the parameters that require grad in each group.
    parameters = dict(model.named_parameters())
    for group, members in model.surgery.groups.items():
        count = sum(parameters[n].numel() for n in members if parameters[n].requires_grad)
        assert f"| {group} | {count:,} |" in card
    assert f"| trainable | {report.trainable:,} |" in card
    base = sum(p.numel() for n, p in model.named_parameters() if ".spliced." not in n and not n.startswith("surgery."))
    assert f"% of {base:,} base parameters" in card
    assert f'surgery.load_adapter(model, "{folder}")' in card


def test_the_base_name_and_revision_are_recorded(tmp_path):
    # A model loaded from a snapshot in the Hub cache layout: both name and revision are known.
    snapshot = tmp_path / "hub" / "models--acme--t5-tiny" / "snapshots" / "0123abcd"
    tiny_model().save_pretrained(snapshot)
    from transformers import T5ForConditionalGeneration

    model = T5ForConditionalGeneration.from_pretrained(snapshot)
    surgery.apply(model, TINY_COMPACTER)
    record = json.loads((surgery.save_adapter(model, tmp_path / "a") / CONFIG_FILE).read_text())
    assert record["base_model"]["repo_id"] == "acme/t5-tiny" and record["base_model"]["revision"] == "0123abcd"
    assert "base_model: acme/t5-tiny" in (tmp_path / "a" / "README.md").read_text()
    # A model built in memory has neither; a revision the caller knows is recorded as given.
    built = tiny_model()
    surgery.apply(built, TINY_COMPACTER)
    record = json.loads((surgery.save_adapter(built, tmp_path / "b", base_revision="v1.0") / CONFIG_FILE).read_text())
    assert record["base_model"] == {"name_or_path": None, "revision": "v1.0"}


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """huggingface_hub's upload and download calls, served by a local folder (no network)."""
    import huggingface_hub

    root = tmp_path / "fake-hub"
    calls = []

    def create_repo(self, repo_id, private=None, exist_ok=False, **kwargs):
        calls.append(("create_repo", repo_id, private))
        (root / repo_id).mkdir(parents=True, exist_ok=True)
        return huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, repo_id, folder_path, revision=None, commit_message=None, **kwargs):
        calls.append(("upload_folder", repo_id, commit_message))
        shutil.copytree(folder_path, root / repo_id, dirs_exist_ok=True)
        return "commit"

    def snapshot_download(repo_id, revision=None, token=None, allow_patterns=None, **kwargs):
        calls.append(("snapshot_download", repo_id, revision))
        if not (root / repo_id).is_dir():
            raise huggingface_hub.errors.RepositoryNotFoundError(f"404 for {repo_id}")
        return str(root / repo_id)

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return root, calls


def test_push_to_hub_then_load_from_the_repo_id(fake_hub, tmp_path):
    root, calls = fake_hub
    tiny_model().save_pretrained(tmp_path / "base")          # the base, loaded by its (local) name
    from transformers import T5ForConditionalGeneration

    model = T5ForConditionalGeneration.from_pretrained(tmp_path / "base", attn_implementation="eager").eval()
    surgery.apply(model, TINY_COMPACTER)
    trained(model)
    surgery.push_to_hub(model, "me/tiny-compacter", private=True)
    assert ("create_repo", "me/tiny-compacter", True) in calls
    assert sorted(p.name for p in (root / "me/tiny-compacter").iterdir()) == ["README.md", CONFIG_FILE, WEIGHTS_FILE]
    assert 'surgery.from_pretrained("me/tiny-compacter")' in (root / "me/tiny-compacter" / "README.md").read_text()

    again = surgery.from_pretrained("me/tiny-compacter", attn_implementation="eager").eval()   # base recorded in the adapter
    assert_same_outputs(model, again, "T5ForConditionalGeneration")
    fresh = T5ForConditionalGeneration.from_pretrained(tmp_path / "base", attn_implementation="eager").eval()
    surgery.load_adapter(fresh, "me/tiny-compacter", revision="main")
    assert_same_outputs(model, fresh, "T5ForConditionalGeneration")
    assert ("snapshot_download", "me/tiny-compacter", "main") in calls


def test_an_unknown_repo_id_fails_clearly(fake_hub):
    with pytest.raises(CheckpointError, match="'me/nothing' is not a local folder, and downloading it .* failed"):
        surgery.load_adapter(tiny_model(), "me/nothing")


def test_an_adapter_without_a_recorded_base_needs_one(tmp_path):
    model = tiny_model()
    surgery.apply(model, TINY_COMPACTER)
    folder = surgery.save_adapter(model, tmp_path / "a")
    with pytest.raises(CheckpointError, match="does not record its base model.*pass base_model="):
        surgery.from_pretrained(folder)
    tiny_model().save_pretrained(tmp_path / "base")
    again = surgery.from_pretrained(folder, base_model=str(tmp_path / "base"), attn_implementation="eager").eval()
    assert_same_outputs(model, again, "T5ForConditionalGeneration")


def test_folders_of_the_first_format_still_load(tmp_path, batch):
    model = trained(spliced())
    folder = surgery.save_adapter(model, tmp_path / "old")
    record = json.loads((folder / CONFIG_FILE).read_text())
    (folder / CONFIG_FILE).unlink()
    (folder / WEIGHTS_FILE).rename(folder / LEGACY_WEIGHTS_FILE)
    legacy = {"format": "t5-surgery-adapter/1", "recipe": record["recipe"], "groups": record["groups"], "base": record["base"]}
    (folder / LEGACY_CONFIG_FILE).write_text(json.dumps(legacy))
    fresh = tiny_model()
    surgery.load_adapter(fresh, folder)
    assert_same_outputs(model, fresh.eval(), "T5ForConditionalGeneration")


def test_a_frozen_added_tensor_is_saved_too(tmp_path):
    """A rule that is not trained (learn_rule: false) is still part of the function: it is saved."""
    recipe = {**TINY_COMPACTER, "options": {**TINY_COMPACTER["options"], "learn_rule": False, "rule_init_std": 0.5}}
    model = trained(spliced(recipe))
    assert not model.surgery.adapters.default.shared.weight.requires_grad
    fresh = tiny_model()
    surgery.load_adapter(fresh, surgery.save_adapter(model, tmp_path / "a"))
    torch.testing.assert_close(fresh.surgery.adapters.default.shared.weight, model.surgery.adapters.default.shared.weight, rtol=0, atol=0)
    assert_same_outputs(model, fresh.eval(), "T5ForConditionalGeneration")


def test_an_empty_adapter_is_refused(tmp_path):
    model = tiny_model()
    surgery.apply(model, "full-finetune")
    model.surgery.groups = {}                     # as if nothing were trained: nothing to save
    with pytest.raises(CheckpointError, match="holds no trained or added tensor to save"):
        surgery.save_adapter(model, tmp_path / "empty")
    assert not (tmp_path / "empty").exists()


def test_loading_into_a_base_with_other_weights_is_refused(tmp_path, batch):
    model = trained(spliced(seed=1))
    folder = surgery.save_adapter(model, tmp_path / "a")
    other = tiny_model(seed=2)                    # same architecture, other weights
    with pytest.raises(CheckpointError, match="other weights"):
        surgery.load_adapter(other, folder)
    assert not hasattr(other, "surgery")
    surgery.load_adapter(other, folder, allow_other_base=True)   # the explicit override
    assert torch.equal(other.surgery.adapters.default.shared.weight, model.surgery.adapters.default.shared.weight)
