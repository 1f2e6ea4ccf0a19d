# Sourced by the device scripts (run_on_gpu.sh, runs_on_device.sh) from the repository root: the
# environment their runs need, and this checkout installed. The engine finds the bundled methods
# through the project's entry point, so the checkout must be installed; the GPU machine's image has
# every dependency but this project (and no network). PYTHON picks the interpreter (default python3).
PYTHON=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if ! $PYTHON -c "import importlib.metadata as m, sys; sys.exit(not m.entry_points(group='t5_surgery.methods'))"; then
  echo "=== installing this checkout (pip install -e ., no dependencies, no network)"
  $PYTHON -m pip install -q --no-deps --no-index --no-build-isolation -e . || exit 1
fi
