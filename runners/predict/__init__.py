"""``python -m runners.predict``: predictions of a trained adapter for every row of a file.

    python -m runners.predict runs/x/own/compacter++/seed-42 --input new.csv --text-column review --output out.jsonl

The folder is a run folder of `runners.finetune` (its ``best/`` adapter is used), the ``best/``
folder itself, or an invocation's ``--output-dir`` holding exactly one run. Its ``task.json``
(`runners.tasks.task_record`) says how a row becomes the model's input and which label words the
task has, so a built-in task's format (``"sst2 sentence: …"``) never has to be looked up.

* :mod:`runners.predict.cli` — the options, every check before the model loads (exit 2, one line);
* :mod:`runners.predict.predicting` — the base and tokenizer loaded, the adapter applied, batches
  generated under a progress bar.
"""

from .cli import main

__all__ = ["main"]
