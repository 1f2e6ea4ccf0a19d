"""No warning from an optional dependency on import: bitsandbytes' missing-`kernels` note is dropped,
and nothing else that bitsandbytes says.

bitsandbytes logs the warning while it is imported, and only on CPUs with AVX512-BF16, so the
record is logged here exactly as its ``backends/cpu/ops.py`` logs it (same logger, same format).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import surgery  # noqa: F401  (installs the filter)

ROOT = Path(__file__).resolve().parents[1]
LOGGER = "bitsandbytes.backends.cpu.ops"
FORMAT = ("Failed to load CPU gemm_4bit_forward from kernels-community: %s. Please make sure you already "
          "`pip install kernels` and the kernels >= 0.11.1")


def _emitted(caplog, *args) -> list[str]:
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        logging.getLogger(LOGGER).warning(*args)
    return [record.getMessage() for record in caplog.records]


def test_the_missing_kernels_package_is_not_reported(caplog):
    assert _emitted(caplog, FORMAT, ModuleNotFoundError("No module named 'kernels'")) == []


@pytest.mark.parametrize("args", [
    (FORMAT, RuntimeError("kernels-community/quantization-bitsandbytes: 401 Unauthorized")),  # installed, failed
    ("Failed to load the native library libbitsandbytes_cpu.so",),                             # anything else
])
def test_every_other_bitsandbytes_warning_still_is(caplog, args):
    assert len(_emitted(caplog, *args)) == 1


def test_importing_the_packages_prints_nothing():
    done = subprocess.run([sys.executable, "-W", "default", "-c", "import surgery, methods, runners.finetune.run"],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == "", done.stderr


def test_seeding_and_building_a_run_model_import_neither_peft_nor_bitsandbytes():
    # transformers.set_seed and transformers.optimization import the Trainer's utilities, and with
    # them PEFT and bitsandbytes where installed (the compare and quantization extras): 17 s at the
    # start of every run here. A run seeds, builds its model and its schedule without them.
    code = ("import sys, torch\n"
            "from runners.embedded.tokenizer import embedded_tokenizer\n"
            "from runners.finetune.model import build_model\n"
            "from runners.training.optim import make_optimizer, make_scheduler\n"
            "model = build_model(None, embedded_tokenizer(), {'d_model': 32, 'd_kv': 8, 'd_ff': 64, 'num_layers': 1,"
            " 'num_heads': 4}, seed=3)\n"
            "make_scheduler(make_optimizer(list(model.parameters()), 0.1), 2, 10)\n"
            "print(sorted({'peft', 'bitsandbytes', 'transformers.trainer_utils'} & set(sys.modules)))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout
