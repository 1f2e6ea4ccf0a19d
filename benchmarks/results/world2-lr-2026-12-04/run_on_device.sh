#!/usr/bin/env bash
# Issue 29, item 3: every Table 1 recipe's learning rate searched over the paper's grid (3e-5 ... 3e-1)
# on world 2's default task under the final embedded protocol (10 epochs, batch 32, dropout 0,
# rationale targets), seed 1 (the reported runs use 42-44), best on validation; the checkpoint
# shipped at 5ba824c. Written for the lent GPU machine (one H200, 16 cores): six runs side by side on
# the GPU (fp32, --precision no, as on a CPU) and ten on its CPU cores (one thread each), both for at
# most LIMIT seconds; then SIGINT, which leaves every unfinished run a resumable last/ checkpoint.
#
#   bash benchmarks/results/world2-lr-2026-12-04/run_on_device.sh WORK [LIMIT]
#   REHEARSAL=1 bash ... WORK 60          the same, small (64 examples, 1 epoch, 2 recipes each), on a CPU
#
# WORK/search.tar.gz holds both invocations' folders without best/ checkpoints and without the
# last/ of finished runs; unfinished ones continue with python -m runners.finetune --resume FOLDER.
set -u
WORK=${1:?usage: run_on_device.sh WORK [LIMIT]}
LIMIT=${2:-480}
cd "$(dirname "$0")/../../.."
mkdir -p "$WORK"
exec > >(tee "$WORK/log.txt") 2>&1
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if ! python3 -c "import importlib.metadata as m, sys; sys.exit(not m.entry_points(group='t5_surgery.methods'))"; then
  python3 -m pip install -q --no-deps --no-index --no-build-isolation -e . || exit 1
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || echo "(no nvidia-smi)"
lscpu | grep -E "Model name|^CPU\(s\)" ; nproc
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"

GPU_RECIPES=compacter++,compacter,phm-adapter,intrinsic-said,prompt-tuning-r,prompt-tuning-t
CPU_RECIPES=full-finetune,adapter,pfeiffer-adapter,adapterdrop,adapter-lowrank,bitfit
GPU_JOBS=6 CPU_JOBS=10
COMMON=(--task world2-sst2 --sweep lr=3e-5,3e-4,3e-3,3e-2,3e-1 --seed 1 --no-progress)
GPU_DEVICE=(--precision no)
if [ "${REHEARSAL:-0}" = 1 ]; then
  GPU_RECIPES=compacter++,bitfit CPU_RECIPES=adapter,full-finetune GPU_JOBS=2 CPU_JOBS=2
  COMMON=(--task world2-sst2 --sweep lr=3e-3,3e-2 --seed 1 --no-progress --max-train 64 --epochs 1)
  GPU_DEVICE=(--cpu)
fi
echo "=== $(date -u +%H:%M:%S) start, limit $LIMIT s"
timeout -s INT -k 60 "$LIMIT" python3 -m runners.finetune "${COMMON[@]}" --recipe "$GPU_RECIPES" "${GPU_DEVICE[@]}" \
  --jobs "$GPU_JOBS" --output-dir "$WORK/gpu" > "$WORK/gpu.log" 2>&1 &
gpu_pid=$!
timeout -s INT -k 60 "$LIMIT" python3 -m runners.finetune "${COMMON[@]}" --recipe "$CPU_RECIPES" --cpu \
  --jobs "$CPU_JOBS" --output-dir "$WORK/cpu" > "$WORK/cpu.log" 2>&1 &
cpu_pid=$!
wait "$gpu_pid" "$cpu_pid"  # (a bare wait would also wait for the tee above)
echo "=== $(date -u +%H:%M:%S) done"
tail -n 30 "$WORK/gpu.log" "$WORK/cpu.log"
# Keep what resuming and the tables need: no best/, no last/ of a finished run (its result.json exists).
cd "$WORK"
find gpu cpu -type d -name best -prune -exec rm -rf {} +
for last in $(find gpu cpu -type d -name last); do
  [ -e "$(dirname "$last")/result.json" ] && rm -rf "$last"
done
tar czf search.tar.gz gpu cpu gpu.log cpu.log log.txt
ls -la search.tar.gz
