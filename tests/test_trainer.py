"""HF Trainer / Seq2SeqTrainer with adapter-only checkpoints: the checkpoint is the adapter's size,
resuming from it continues the same training, and load_best_model_at_end loads the best adapter."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch.utils.data import Dataset
from transformers import Seq2SeqTrainingArguments, Trainer, TrainingArguments

import surgery
from conftest import tiny_model
from surgery.checkpoint import WEIGHTS_FILE
from surgery.naming import canonical_name
from surgery.trainer import SurgerySeq2SeqTrainer, SurgeryTrainer

RECIPE = {**surgery.load_recipe("compacter++").source, "options": {**surgery.load_recipe("compacter++").options, "n": 2}}


class Examples(Dataset):
    def __init__(self, count: int = 12, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.inputs = torch.randint(2, 96, (count, 8), generator=generator)
        self.labels = torch.randint(2, 96, (count, 4), generator=generator)

    def __len__(self):
        return len(self.inputs)

    def __getitem__(self, index):
        return {"input_ids": self.inputs[index], "labels": self.labels[index]}


def arguments(out: Path, cls=TrainingArguments, **overrides):
    settings = dict(output_dir=str(out), max_steps=4, per_device_train_batch_size=3, learning_rate=1e-2, report_to=[],
                    save_strategy="steps", save_steps=2, logging_strategy="no", use_cpu=True, dataloader_num_workers=0,
                    seed=0, data_seed=0)
    settings.update(overrides)
    return cls(**settings)


def spliced():
    model = tiny_model(seed=4).train()
    surgery.apply(model, RECIPE)
    return model


def trained_state(model):
    """The trained tensors by the names an adapter checkpoint gives them (without the adapter's name)."""
    return {canonical_name(n, "default"): p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def test_checkpoints_hold_only_the_adapter(tmp_path):
    model = spliced()
    SurgeryTrainer(model=model, args=arguments(tmp_path / "ours"), train_dataset=Examples()).train()
    checkpoint = tmp_path / "ours" / "checkpoint-4"
    assert not (checkpoint / "model.safetensors").exists()
    tensors = load_file(checkpoint / WEIGHTS_FILE)
    trainable = {canonical_name(n, "default"): p for n, p in model.named_parameters() if p.requires_grad}
    assert tensors.keys() == trainable.keys()   # the file names tensors without the adapter's name
    for name, parameter in trainable.items():   # the checkpoint holds the trained values
        torch.testing.assert_close(tensors[name], parameter.detach(), rtol=0, atol=0)
    adapter_bytes = 4 * sum(p.numel() for p in trainable.values())
    assert (checkpoint / WEIGHTS_FILE).stat().st_size < adapter_bytes + 8192   # its tensors plus a header

    # The stock Trainer writes the whole model: the same run, side by side. Its other files
    # (optimizer, scheduler, RNG, trainer state) are the same in both folders.
    plain = spliced()
    Trainer(model=plain, args=arguments(tmp_path / "stock"), train_dataset=Examples()).train()
    stock = tmp_path / "stock" / "checkpoint-4"
    base_bytes = 4 * sum(p.numel() for p in plain.parameters())
    model_file = (stock / "model.safetensors").stat().st_size
    assert model_file > base_bytes > 50 * adapter_bytes
    ours = {f.name: f.stat().st_size for f in checkpoint.iterdir()}
    theirs = {f.name: f.stat().st_size for f in stock.iterdir()}
    trainer_files = {"optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json", "training_args.bin"}
    assert trainer_files <= ours.keys() and trainer_files <= theirs.keys()
    adapter_folder = sum(size for name, size in ours.items() if name not in trainer_files)   # tensors, recipe, card
    assert adapter_folder < adapter_bytes + 16384 and adapter_folder < model_file / 20


def test_resuming_from_an_adapter_checkpoint_continues_training(tmp_path):
    args = dict(cls=Seq2SeqTrainingArguments)
    uninterrupted = spliced()
    SurgerySeq2SeqTrainer(model=uninterrupted, args=arguments(tmp_path / "a", **args), train_dataset=Examples()).train()

    # As if the run had stopped after step 2: a fresh base, resumed from that checkpoint alone.
    shutil.copytree(tmp_path / "a" / "checkpoint-2", tmp_path / "b" / "checkpoint-2")
    after_two = load_file(tmp_path / "b" / "checkpoint-2" / WEIGHTS_FILE)
    resumed = spliced()
    trainer = SurgerySeq2SeqTrainer(model=resumed, args=arguments(tmp_path / "b", **args), train_dataset=Examples())
    trainer.train(resume_from_checkpoint=str(tmp_path / "b" / "checkpoint-2"))
    assert trainer.state.global_step == 4
    final, expected = trained_state(resumed), trained_state(uninterrupted)
    for name in expected:
        torch.testing.assert_close(final[name], expected[name], rtol=0, atol=1e-6, msg=name)
    # and training did continue: steps 3-4 moved every trained tensor away from the step-2 values
    assert all(not torch.allclose(final[n], after_two[n]) for n in expected)


def test_load_best_model_at_end_loads_the_best_adapter(tmp_path):
    calls = []

    def first_evaluation_is_best(prediction):
        calls.append(1)
        return {"order": float(len(calls))}            # 1, 2: lower is better, so step 2 is the best

    model = spliced()
    args = arguments(tmp_path / "out", eval_strategy="steps", eval_steps=2, load_best_model_at_end=True,
                     metric_for_best_model="order", greater_is_better=False, per_device_eval_batch_size=4)
    trainer = SurgeryTrainer(model=model, args=args, train_dataset=Examples(), eval_dataset=Examples(4, seed=1),
                             compute_metrics=first_evaluation_is_best)
    trainer.train()
    assert trainer.state.best_model_checkpoint.endswith("checkpoint-2") and len(calls) == 2
    best = load_file(Path(trainer.state.best_model_checkpoint) / WEIGHTS_FILE)
    last = load_file(tmp_path / "out" / "checkpoint-4" / WEIGHTS_FILE)
    for name, parameter in trained_state(model).items():
        torch.testing.assert_close(parameter, best[name], rtol=0, atol=0, msg=name)
    assert any(not torch.equal(best[n], last[n]) for n in best)   # loading the best really changed the model


def test_a_model_without_surgery_keeps_the_stock_behaviour(tmp_path):
    model = tiny_model().train()
    SurgeryTrainer(model=model, args=arguments(tmp_path / "out", max_steps=2), train_dataset=Examples()).train()
    assert (tmp_path / "out" / "checkpoint-2" / "model.safetensors").is_file()
