#!/usr/bin/env bash
# One-step set-up on a fresh machine: the pinned torch first (a local CPU wheel where one is
# provided), so that nothing pulls a multi-GB CUDA build; then this package with its test extras
# (and bitsandbytes, so the quantised-base tests run).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
if ! $PY -c "import torch" 2>/dev/null; then
  $PY -m pip install -q torch==2.13.0
fi
$PY -m pip install -q -e ".[test,plot,quantization]"
