"""Default settings of a run: the paper's protocol per task, the demo's for the embedded task.

Every value here is only a default: each one is a command-line option of `runners.finetune`.

=====================  ==========================  ===================================
setting                GLUE / SuperGLUE (paper)    embedded demo (random-init T5)
=====================  ==========================  ===================================
epochs                 20 small sets, 3 large      10
batch size (global)    100                         32
warm-up steps          500 GLUE, 0 SuperGLUE       0
max source length      128 GLUE, 256 SuperGLUE,    64
                       512 ReCoRD
max target length      128                         8
learning rate          the method's (paper)        1e-3 (full-finetune; else the method's)
=====================  ==========================  ===================================

Low-resource (paper Section 5): 100 / 500 / 1000 / 2000 / 4000 training examples are trained for
1000 / 200 / 100 / 50 / 25 epochs.

>>> from runners.tasks import get_task
>>> paper_defaults(get_task("cb"))["warmup_steps"], paper_defaults(get_task("record"))["max_source_length"]
(0, 512)
>>> paper_defaults(get_task("mnli"))["epochs"], paper_defaults(get_task("rte"))["epochs"]
(3, 20)
>>> LOW_RESOURCE_EPOCHS[500]
200
"""

from __future__ import annotations

from typing import Any

LOW_RESOURCE_EPOCHS = {100: 1000, 500: 200, 1000: 100, 2000: 50, 4000: 25}
PAPER_BATCH_SIZE = 100
PAPER_MAX_TARGET_LENGTH = 128

# The demo trains a random-init T5 on the embedded task with full fine-tuning: adapters in a
# network whose every other weight is random noise have nothing to adapt. Measured on the demo
# model, 10 epochs each: compacter++ (lr 3e-3) stays near chance (50-60 % validation accuracy,
# test 54 %), full fine-tuning (lr 1e-3) reaches 82.5 % validation, 84.5 % test, in about 30 s on
# one CPU thread.
DEMO_RECIPE = "full-finetune"
DEMO: dict[str, Any] = {"epochs": 10, "batch_size": 32, "warmup_steps": 0, "max_source_length": 64,
                        "max_target_length": 8, "learning_rate": 1e-3}
# Intra-op CPU threads for the small random-init model: its matrices are too small to gain much
# from more threads, and OpenMP threads slow down many-fold when other processes busy the cores.
SMALL_MODEL_CPU_THREADS = 1
DEFAULT_RECIPE = "compacter++"   # any task but the demo


def paper_defaults(task) -> dict[str, Any]:
    """The paper's settings for `task` (learning rate excluded: it is the method's)."""
    if task.benchmark == "embedded":
        return dict(DEMO)
    max_source = 512 if task.name == "record" else 256 if task.benchmark == "superglue" else 128
    return {
        "epochs": 3 if task.size == "large" else 20,
        "batch_size": PAPER_BATCH_SIZE,
        "warmup_steps": 0 if task.benchmark == "superglue" else 500,
        "max_source_length": max_source,
        "max_target_length": PAPER_MAX_TARGET_LENGTH,
    }
