"""Hugging Face `Trainer` / `Seq2SeqTrainer` whose checkpoints hold only the adapter.

The stock Trainer saves `model.save_pretrained(...)` at every checkpoint: the whole model, about
150× the trainable weights of Compacter++ on T5-base. It only knows PEFT models as "adapter"
models, and it looks for PEFT's file names when it resumes or loads the best checkpoint. The
mixin below replaces those three steps, and nothing else:

* saving a checkpoint (and `trainer.save_model()`) writes `surgery.save_adapter`'s folder
  (tensors, recipe, model card) plus the usual tokenizer and training arguments; the optimizer,
  scheduler, RNG and trainer state files are the Trainer's own;
* `trainer.train(resume_from_checkpoint=...)` loads the adapter back, then the Trainer restores
  the optimizer, scheduler, RNG and data position as usual;
* ``load_best_model_at_end=True`` loads the best checkpoint's adapter.

Use `SurgeryTrainer` / `SurgerySeq2SeqTrainer` in place of `Trainer` / `Seq2SeqTrainer`, or mix
`AdapterCheckpoints` into your own subclass (first in the bases). Folders without an adapter
(e.g. a checkpoint of a model without surgery) are left to the Trainer.

    trainer = SurgeryTrainer(model=spliced_model, args=TrainingArguments(...), train_dataset=...)
    trainer.train()
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import Seq2SeqTrainer, Trainer

from .checkpoint import CONFIG_FILE, LEGACY_CONFIG_FILE, load_adapter, save_adapter
from .distributed import unwrap
from .naming import STATE

TRAINING_ARGS_NAME = "training_args.bin"  # the Trainer's name for it (transformers.trainer)


def holds_adapter(folder: str | os.PathLike | None) -> bool:
    """True when `folder` is a t5-surgery adapter folder (either format)."""
    if folder is None:
        return False
    folder = Path(folder)
    legacy = folder / LEGACY_CONFIG_FILE
    return (folder / CONFIG_FILE).is_file() or (legacy.is_file() and '"t5-surgery-adapter/' in legacy.read_text())


class AdapterCheckpoints:
    """Trainer mixin: adapter-only checkpoints for models surgery was applied to."""

    def _spliced_model(self):
        model = unwrap(self.accelerator.unwrap_model(self.model) if hasattr(self, "accelerator") else self.model)
        return model if hasattr(model, STATE) else None

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        model = self._spliced_model()
        if model is None:
            return super()._save(output_dir, state_dict)
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return None
        os.makedirs(output_dir, exist_ok=True)
        save_adapter(model, output_dir)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
        torch.save(self.args, os.path.join(output_dir, TRAINING_ARGS_NAME))
        return None

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        spliced = unwrap(model) if model is not None else self._spliced_model()
        if spliced is not None and hasattr(spliced, STATE) and holds_adapter(resume_from_checkpoint):
            load_adapter(spliced, resume_from_checkpoint)
            return None
        return super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _load_best_model(self) -> None:
        model = self._spliced_model()
        if model is not None and holds_adapter(self.state.best_model_checkpoint):
            load_adapter(model, self.state.best_model_checkpoint)
            return None
        return super()._load_best_model()


class SurgeryTrainer(AdapterCheckpoints, Trainer):
    """`transformers.Trainer` with adapter-only checkpoints (see the module docstring)."""


class SurgerySeq2SeqTrainer(AdapterCheckpoints, Seq2SeqTrainer):
    """`transformers.Seq2SeqTrainer` with adapter-only checkpoints (see the module docstring)."""
