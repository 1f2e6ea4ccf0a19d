"""The model that comes out of surgery is still the user's Hugging Face model."""

from __future__ import annotations

import copy

import torch
from torch.utils.data import Dataset

import surgery
from conftest import tiny_model, zero_up_projections


class _Pairs(Dataset):
    def __init__(self, batch):
        self.rows = [{k: v[i] for k, v in batch.items()} for i in range(len(batch["input_ids"]))]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        return self.rows[index]


def test_hf_trainer_trains_only_the_adapters(batch, tmp_path):
    from transformers import Trainer, TrainingArguments

    model = tiny_model().train()
    surgery.apply(model, "adapter")
    frozen_before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trained_before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=3, learning_rate=1e-2,
                             report_to=[], save_strategy="no", logging_strategy="no", use_cpu=True, dataloader_num_workers=0)
    Trainer(model=model, args=args, train_dataset=_Pairs(batch)).train()
    assert all(torch.equal(p, frozen_before[n]) for n, p in model.named_parameters() if n in frozen_before)
    assert all(not torch.equal(p, trained_before[n]) for n, p in model.named_parameters() if n in trained_before)


def test_torch_compile_traces_the_spliced_model(batch):
    model = tiny_model()
    surgery.apply(model, "adapter")
    with torch.no_grad():
        expected = model(**batch).logits
        compiled = torch.compile(model, backend="eager")  # dynamo capture; inductor codegen is too slow for CI
        torch.testing.assert_close(compiled(**batch).logits, expected, rtol=0, atol=0)


def test_deepcopy_keeps_a_working_independent_model(batch):
    model = tiny_model()
    surgery.apply(model, {**surgery.load_recipe("compacter").source, "options": {"projection": "phm", "factorized": True, "shared_rule": True, "n": 2}})
    clone = copy.deepcopy(model)
    with torch.no_grad():
        torch.testing.assert_close(clone(**batch).logits, model(**batch).logits, rtol=0, atol=0)
        clone.surgery.adapters.default.shared.weight.add_(1.0)
        assert not torch.allclose(clone(**batch).logits, model(**batch).logits)
    # the clone's layers use the clone's rule, not the original's
    assert all(m.rule_module is clone.surgery.adapters.default.shared for _, m in clone.named_modules() if hasattr(m, "rule_module"))


def test_generate_with_kv_cache_matches_without(batch):
    model = tiny_model()
    surgery.apply(model, "adapter")
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".spliced." in name:
                parameter.normal_(std=0.3)
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    cached = model.generate(**inputs, max_new_tokens=6, do_sample=False, use_cache=True)
    uncached = model.generate(**inputs, max_new_tokens=6, do_sample=False, use_cache=False)
    assert torch.equal(cached, uncached)


def test_identity_costs_nothing_in_eval_outputs_across_modes(batch):
    base = tiny_model()
    model = copy.deepcopy(base)
    surgery.apply(model, "adapter")
    zero_up_projections(model)
    for mode in ("train", "eval"):
        getattr(base, mode)()
        getattr(model, mode)()
        with torch.no_grad():
            torch.testing.assert_close(model(**batch).logits, base(**batch).logits, rtol=0, atol=1e-6)


def test_whole_model_pickles_into_a_fresh_process(batch, tmp_path):
    """torch.save(model) of a spliced model loads in a new interpreter (classes resolve by name)."""
    import subprocess
    import sys

    model = tiny_model()
    surgery.apply(model, {**surgery.load_recipe("compacter").source, "options": {"projection": "phm", "factorized": True, "shared_rule": True, "n": 2}})
    with torch.no_grad():
        expected = model(**batch).logits
    torch.save({"model": model, "batch": batch, "expected": expected}, tmp_path / "whole.pt")
    code = (
        "import torch\n"
        f"saved = torch.load({str(tmp_path / 'whole.pt')!r}, weights_only=False)\n"
        "model = saved['model']\n"
        "assert all(m.rule_module is model.surgery.adapters.default.shared for _, m in model.named_modules() if hasattr(m, 'rule_module'))\n"
        "with torch.no_grad():\n"
        "    torch.testing.assert_close(model(**saved['batch']).logits, saved['expected'], rtol=0, atol=0)\n"
        "print('ok', type(model.encoder.block[0]).__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok SplicedT5Block"
