#!/usr/bin/env bash
# Many runs of runners.finetune on the lent GPU machine (one H200, 16 cores) within one device call:
# one invocation on the GPU (fp32, --precision no: the numbers a CPU run gives, up to float order)
# with GPU_JOBS runs side by side, and one on the CPU cores (--cpu) with CPU_JOBS, both stopped by
# SIGINT after LIMIT seconds, which leaves every unfinished run a resumable last/ checkpoint. Then
# WORK/runs.tar.gz holds both output folders without best/ and without the last/ of finished runs
# (a full fine-tuning last/ is ~60 MB: over what a call brings back; such a run starts again).
#
#   GPU_ARGS="--task world2-glue --recipe compacter,adapter --seeds 43" CPU_ARGS="..." \
#     bash benchmarks/gpu/runs_on_device.sh WORK [LIMIT]
#   REHEARSAL=1 ... bash benchmarks/gpu/runs_on_device.sh WORK 60     the GPU half on the CPU, to try it here
#
# GPU_JOBS (default 6) and CPU_JOBS (default 10) say how many runs go side by side; leave one core
# per GPU run. An empty GPU_ARGS or CPU_ARGS skips that half. Measured 2026-12-04
# (benchmarks/results/world2-lr-2026-12-04): a world2-sst2 run took 35-45 s on the GPU with six
# side by side, 89-197 s on one of its Xeon cores. Continue an unfinished folder on any machine with
#   python -m runners.finetune --resume FOLDER --jobs N
set -u
WORK=${1:?usage: runs_on_device.sh WORK [LIMIT]}
LIMIT=${2:-480}
GPU_JOBS=${GPU_JOBS:-6} CPU_JOBS=${CPU_JOBS:-10}
cd "$(dirname "$0")/../.."
mkdir -p "$WORK"
exec > >(tee "$WORK/log.txt") 2>&1
source benchmarks/gpu/checkout.sh   # the environment, PYTHON, and this checkout installed
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || echo "(no nvidia-smi)"
$PYTHON -c "import os, torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, \
'cuda', torch.cuda.is_available(), 'cores', os.cpu_count())"
GPU_DEVICE=(--precision no)
[ "${REHEARSAL:-0}" = 1 ] && GPU_DEVICE=(--cpu)

pids=()
start() {  # start NAME JOBS DEVICE-ARGS... -- RUNNER-ARGS (word-split on purpose)
  local name=$1 jobs=$2; shift 2
  echo "=== $(date -u +%H:%M:%S) $name: $* --jobs $jobs (at most $LIMIT s)"
  # shellcheck disable=SC2068
  timeout -s INT -k 60 "$LIMIT" $PYTHON -m runners.finetune $@ --jobs "$jobs" --no-progress \
    --output-dir "$WORK/$name" > "$WORK/$name.log" 2>&1 &
  pids+=($!)
}
[ -n "${GPU_ARGS:-}" ] && start gpu "$GPU_JOBS" "${GPU_DEVICE[@]}" $GPU_ARGS
[ -n "${CPU_ARGS:-}" ] && start cpu "$CPU_JOBS" --cpu $CPU_ARGS
[ ${#pids[@]} -gt 0 ] || { echo "nothing to run: set GPU_ARGS and/or CPU_ARGS"; exit 2; }
wait "${pids[@]}"  # (a bare wait would also wait for the tee above)
echo "=== $(date -u +%H:%M:%S) done"
cd "$WORK"
names=$(ls -d gpu cpu 2>/dev/null)
for name in $names; do echo "--- $name"; grep -E "^\[|^error|^interrupted" "$name.log" | tail -n 40; done
find $names -type d -name best -prune -exec rm -rf {} +
for last in $(find $names -type d -name last); do
  if [ -e "$(dirname "$last")/result.json" ] || [ "$(du -sm "$last" | cut -f1)" -gt 8 ]; then rm -rf "$last"; fi
done
tar czf runs.tar.gz $names ./*.log log.txt
ls -la runs.tar.gz
