"""`paper_defaults` for (task, recipe, model size, output layer) against the appendix, value by value.

The expected values are transcribed here from the appendix (/work/shared/paper/compacter-appendix.txt):
Tables 4 (T5-base, GLUE), 5 (output layer trained), 10 (T5-small), 11 (SuperGLUE) for the
learning rates; "A Experimental Details" for batch sizes (100 GLUE, 32 SuperGLUE, 16 ReCoRD, 40
low-resource), warm-up (500 for Tables 1 and 7, 0 for Tables 2 and 9) and lengths; §5 for epochs
(20 on MRPC, CoLA, STS-B, RTE, BoolQ, CB, COPA, WiC, 3 elsewhere).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import T5Config

import surgery
from runners.finetune.protocol import paper_defaults, paper_method, search_grid
from runners.finetune.run import train_config
from runners.tasks import get_task

BASE = T5Config(d_model=768, num_layers=12, num_heads=12, d_kv=64, d_ff=3072)
SMALL = T5Config(d_model=512, num_layers=6, num_heads=8, d_kv=64, d_ff=2048)
OTHER = T5Config(d_model=128, num_layers=2, num_heads=4, d_kv=32, d_ff=256)
SIZES = {"base": BASE, "small": SMALL, "other": OTHER}


def with_output_layer(name: str) -> dict:
    source = surgery.load_recipe(name).source
    return {**source, "train": list(source.get("train") or []) + ["output_layer"]}


# task, recipe, size, output layer → learning rate, batch, epochs, warm-up, max source length
APPENDIX = [
    # Table 4 (T5-base, GLUE): warm-up 500, batch 100, source 128
    ("rte", "full-finetune", "base", False, 3e-4, 100, 20, 500, 128),
    ("rte", "adapter", "base", False, 3e-4, 100, 20, 500, 128),
    ("mrpc", "pfeiffer-adapter", "base", False, 3e-4, 100, 20, 500, 128),
    ("cola", "adapterdrop", "base", False, 3e-4, 100, 20, 500, 128),
    ("stsb", "adapter-lowrank", "base", False, 3e-3, 100, 20, 500, 128),
    ("sst2", "prompt-tuning-r", "base", False, 3e-2, 100, 3, 500, 128),
    ("qqp", "prompt-tuning-t", "base", False, 3e-1, 100, 3, 500, 128),
    ("mnli", "intrinsic-said", "base", False, 3e-2, 100, 3, 500, 128),
    ("qnli", "bitfit", "base", False, 3e-4, 100, 3, 500, 128),
    ("rte", "phm-adapter", "base", False, 3e-3, 100, 20, 500, 128),
    ("rte", "compacter", "base", False, 3e-3, 100, 20, 500, 128),
    ("rte", "compacter++", "base", False, 3e-3, 100, 20, 500, 128),
    # Table 5 (output layer trained, T5-base GLUE): Adapter 3e-3, the others as Table 4
    ("rte", "adapter", "base", True, 3e-3, 100, 20, 500, 128),
    ("rte", "pfeiffer-adapter", "base", True, 3e-4, 100, 20, 500, 128),
    ("rte", "adapterdrop", "base", True, 3e-4, 100, 20, 500, 128),
    ("rte", "adapter-lowrank", "base", True, 3e-3, 100, 20, 500, 128),
    ("rte", "bitfit", "base", True, 3e-4, 100, 20, 500, 128),
    ("rte", "phm-adapter", "base", True, 3e-3, 100, 20, 500, 128),
    ("rte", "compacter", "base", True, 3e-3, 100, 20, 500, 128),
    ("rte", "compacter++", "base", True, 3e-3, 100, 20, 500, 128),
    # Table 10 (T5-small, GLUE): warm-up 0; Adapter, AdapterDrop and BitFit 3e-3
    ("rte", "full-finetune", "small", False, 3e-4, 100, 20, 0, 128),
    ("rte", "adapter", "small", False, 3e-3, 100, 20, 0, 128),
    ("rte", "pfeiffer-adapter", "small", False, 3e-4, 100, 20, 0, 128),
    ("rte", "adapterdrop", "small", False, 3e-3, 100, 20, 0, 128),
    ("mnli", "adapter-lowrank", "small", False, 3e-3, 100, 3, 0, 128),
    ("rte", "prompt-tuning-r", "small", False, 3e-2, 100, 20, 0, 128),
    ("rte", "prompt-tuning-t", "small", False, 3e-1, 100, 20, 0, 128),
    ("rte", "intrinsic-said", "small", False, 3e-2, 100, 20, 0, 128),
    ("sst2", "bitfit", "small", False, 3e-3, 100, 3, 0, 128),
    ("rte", "phm-adapter", "small", False, 3e-3, 100, 20, 0, 128),
    ("rte", "compacter", "small", False, 3e-3, 100, 20, 0, 128),
    ("rte", "compacter++", "small", False, 3e-3, 100, 20, 0, 128),
    # Table 11 (T5-base, SuperGLUE): batch 32, warm-up 0, source 256; SAID 3e-3
    ("boolq", "full-finetune", "base", False, 3e-4, 32, 20, 0, 256),
    ("cb", "adapter", "base", False, 3e-4, 32, 20, 0, 256),
    ("copa", "pfeiffer-adapter", "base", False, 3e-4, 32, 20, 0, 256),
    ("wic", "adapterdrop", "base", False, 3e-4, 32, 20, 0, 256),
    ("multirc", "adapter-lowrank", "base", False, 3e-3, 32, 3, 0, 256),   # MultiRC: 3 epochs
    ("cb", "prompt-tuning-r", "base", False, 3e-2, 32, 20, 0, 256),
    ("cb", "prompt-tuning-t", "base", False, 3e-1, 32, 20, 0, 256),
    ("cb", "bitfit", "base", False, 3e-4, 32, 20, 0, 256),
    ("cb", "intrinsic-said", "base", False, 3e-3, 32, 20, 0, 256),
    ("cb", "phm-adapter", "base", False, 3e-3, 32, 20, 0, 256),
    ("cb", "compacter", "base", False, 3e-3, 32, 20, 0, 256),
    ("record", "compacter++", "base", False, 3e-3, 16, 3, 0, 512),        # ReCoRD: batch 16, source 512
    # other sizes: T5-base's protocol
    ("rte", "adapter", "other", False, 3e-4, 100, 20, 500, 128),
    ("cb", "intrinsic-said", "other", False, 3e-3, 32, 20, 0, 256),
]


@pytest.mark.parametrize("task, recipe, size, output_layer, lr, batch, epochs, warmup, source", APPENDIX)
def test_paper_defaults_follow_the_appendix(task, recipe, size, output_layer, lr, batch, epochs, warmup, source):
    defaults = paper_defaults(get_task(task), with_output_layer(recipe) if output_layer else recipe, SIZES[size])
    got = tuple(defaults[k] for k in ("learning_rate", "batch_size", "epochs", "warmup_steps", "max_source_length"))
    assert got == (lr, batch, epochs, warmup, source)
    assert defaults["max_target_length"] == 128
    assert set(defaults["sources"]) >= {"learning_rate", "batch_size", "epochs", "warmup_steps", "max_source_length"}
    table = {("base", False): "Table 4", ("base", True): "Table 5", ("small", False): "Table 10"}
    if get_task(task).benchmark == "superglue":
        assert "Table 11" in defaults["sources"]["learning_rate"]
    elif size != "other":
        assert table[(size, output_layer)] in defaults["sources"]["learning_rate"]


def test_other_sizes_fall_back_to_t5_base_with_a_note():
    defaults = paper_defaults(get_task("rte"), "adapter", OTHER)
    assert any("neither T5-base" in note and "T5-base's protocol" in note for note in defaults["notes"])
    assert paper_defaults(get_task("rte"), "adapter", BASE)["notes"] == []


@pytest.mark.parametrize("recipe, output_layer, size, task, says", [
    ("prompt-tuning-r", True, "base", "rte", "Table 5 (output layer trained) has no Prompt tuning-R row"),
    ("adapter", True, "small", "rte", "output layer with T5-base on GLUE only"),
    ("adapter", False, "small", "cb", "T5-small on GLUE only"),
])
def test_settings_the_paper_did_not_run_say_which_table_they_use(recipe, output_layer, size, task, says):
    defaults = paper_defaults(get_task(task), with_output_layer(recipe) if output_layer else recipe, SIZES[size])
    assert any(says in note for note in defaults["notes"]), defaults["notes"]


def test_output_layer_variant_of_adapter_on_t5_small_takes_table_5():
    # Table 5 is the only table of output-layer runs; the paper ran them on T5-base.
    assert paper_defaults(get_task("rte"), with_output_layer("adapter"), SMALL)["learning_rate"] == 3e-3
    assert paper_defaults(get_task("rte"), with_output_layer("pfeiffer-adapter"), SMALL)["learning_rate"] == 3e-4


@pytest.mark.parametrize("examples, epochs", [(100, 1000), (500, 200), (1000, 100), (2000, 50), (4000, 25)])
def test_low_resource_batch_40_and_the_epoch_schedule(examples, epochs):
    defaults = paper_defaults(get_task("mnli"), "compacter++", BASE, low_resource=examples)
    assert (defaults["batch_size"], defaults["epochs"], defaults["learning_rate"]) == (40, epochs, 3e-3)


def test_embedded_task_keeps_its_own_defaults():
    defaults = paper_defaults(get_task("embedded-sst2"), "compacter++", BASE)
    assert (defaults["batch_size"], defaults["epochs"]) == (32, 10)
    source = defaults["sources"]["learning_rate"]
    assert "validation search on embedded-sst2" in source and "Table" not in source


@pytest.mark.parametrize("recipe, method", [
    ("full-finetune", "T5 (full fine-tuning)"), ("adapter", "Adapter"), ("pfeiffer-adapter", "Pfeiffer-Adapter"),
    ("adapterdrop", "AdapterDrop"), ("adapter-lowrank", "Adapter-LowRank"), ("prompt-tuning-r", "Prompt tuning-R"),
    ("prompt-tuning-t", "Prompt tuning-T"), ("intrinsic-said", "Intrinsic-SAID"), ("bitfit", "BitFit"),
    ("phm-adapter", "PHM-Adapter"), ("compacter", "Compacter"), ("compacter++", "Compacter++"),
])
def test_every_bundled_recipe_is_one_row_of_the_tables(recipe, method):
    assert paper_method(recipe) == method


def test_a_users_recipe_is_classified_by_its_structure():
    assert paper_method({"method": "adapter", "options": {"projection": "phm", "factorized": True},
                         "sites": ["after_ffn"]}) == "Compacter++"
    assert paper_method({"method": "adapter", "sites": ["after_ffn"], "layers": {"encoder": [3, 4]}}) == "AdapterDrop"


def test_the_runner_uses_the_table_and_prints_the_notes():
    method = surgery.load_recipe("adapter")
    notes: list[str] = []
    config, source = train_config({}, get_task("rte"), Path("x"), 42, None,
                                  recipe=method, model_config=SMALL, say=notes.append)
    assert (config.learning_rate, config.warmup_steps, config.batch_size) == (3e-3, 0, 100)
    assert "Table 10" in source and notes == []
    config, _ = train_config({}, get_task("rte"), Path("x"), 42, None,
                             recipe=method, model_config=OTHER, say=notes.append)
    assert config.learning_rate == 3e-4 and any("neither T5-base" in n for n in notes)
    config, source = train_config({"lr": 0.5}, get_task("rte"), Path("x"), 42, None,
                                  recipe=method, model_config=SMALL, setting_lr=0.25)
    assert (config.learning_rate, source) == (0.25, "--sweep/--set lr")


def test_the_papers_search_grid_per_size():
    assert search_grid("compacter", SMALL) == {"lr": [3e-5, 3e-4, 3e-3, 3e-2, 3e-1],
                                               "options.bottleneck": [16, 32, 64], "options.n": [4, 8, 16]}
    assert search_grid("adapter", BASE) == {"lr": [3e-5, 3e-4, 3e-3, 3e-2, 3e-1], "options.bottleneck": [96, 48, 24]}
    assert search_grid("intrinsic-said") == {"lr": [3e-5, 3e-4, 3e-3, 3e-2, 3e-1]}
