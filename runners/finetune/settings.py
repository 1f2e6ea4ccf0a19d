"""Default settings of a run: the paper's protocol per task, model size and method; the demo's for the embedded task.

Every value here is only a default: each one is a command-line option of `runners.finetune`.

=====================  ==================================  ===================================
setting                GLUE / SuperGLUE (paper)            embedded demo (random-init T5)
=====================  ==================================  ===================================
epochs                 20 small sets, 3 large              10
batch size (global)    100 GLUE, 32 SuperGLUE, 16 ReCoRD,  32
                       40 low-resource
warm-up steps          500 T5-base GLUE, else 0            0
max source length      128 GLUE, 256 SuperGLUE,            64
                       512 ReCoRD
max target length      128                                 8
learning rate          appendix Tables 4/5/10/11, by       1e-3 (full-finetune; else the method's)
                       method, size, benchmark and
                       output layer
=====================  ==================================  ===================================

`runners.finetune.protocol` holds the paper's tables and where each value comes from.
Low-resource (paper Section 5.6): 100 / 500 / 1000 / 2000 / 4000 training examples are trained for
1000 / 200 / 100 / 50 / 25 epochs.

>>> from runners.tasks import get_task
>>> paper_defaults(get_task("cb"))["warmup_steps"], paper_defaults(get_task("record"))["max_source_length"]
(0, 512)
>>> paper_defaults(get_task("mnli"))["epochs"], paper_defaults(get_task("rte"))["epochs"]
(3, 20)
>>> paper_defaults(get_task("cb"), "intrinsic-said")["learning_rate"]   # Table 11 (SuperGLUE)
0.003
>>> LOW_RESOURCE_EPOCHS[500]
200
"""

from __future__ import annotations

from typing import Any

from .protocol import LOW_RESOURCE_EPOCHS, paper_protocol

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


def paper_defaults(task, recipe=None, model_config=None, low_resource: int | None = None) -> dict[str, Any]:
    """The default settings of a run of `recipe` on `task` with a model of `model_config`.

    The paper's protocol (`runners.finetune.protocol.paper_protocol`, with "sources" and "notes"
    entries saying where each value comes from), or the embedded demo's own settings. Without a
    recipe, the learning rate is left to the method.
    """
    if task.benchmark == "embedded":
        return embedded_defaults(low_resource)
    protocol = paper_protocol(task, recipe, model_config, low_resource)
    return {**protocol.values, "sources": protocol.sources, "notes": protocol.notes}


def embedded_defaults(low_resource: int | None = None) -> dict[str, Any]:
    """The embedded demo task's settings (not the paper's: its model is a small random-init T5)."""
    values = dict(DEMO)
    if low_resource is not None:
        values["epochs"] = LOW_RESOURCE_EPOCHS.get(low_resource, values["epochs"])
    return values
