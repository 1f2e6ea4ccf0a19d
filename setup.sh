#!/usr/bin/env bash
# One-step set-up on a fresh machine: the pinned torch first (a local CPU wheel where one is
# provided), so that nothing pulls a multi-GB CUDA build; then this package with its test extras
# (and bitsandbytes, so the quantised-base tests run; and PEFT, so the peft-lora comparison's tests
# run). Each step says what it does; pip's own output follows (set PIP_QUIET=1 for less).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
step() { echo "==> [setup.sh] $*"; }
step "using $($PY -c 'import sys; print(sys.executable, sys.version.split()[0])')"
if $PY -c "import torch" 2>/dev/null; then
  step "torch $($PY -c 'import torch; print(torch.__version__)') is already installed: kept"
else
  step "installing torch 2.13.0 (CPU wheel where one is provided; a few minutes)"
  $PY -m pip install --progress-bar on torch==2.13.0
fi
step "installing t5-surgery (editable) with its test, plot, quantization and compare extras"
$PY -m pip install --progress-bar on -e ".[test,plot,quantization,compare]"
step "checking the install: import surgery, methods, runners"
$PY -c "import surgery, methods, runners; print('ok:', len(surgery.bundled_recipes()), 'bundled recipes')"
step "done; run the tests with: $PY -m pytest"
