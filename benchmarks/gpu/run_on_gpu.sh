#!/usr/bin/env bash
# Issue 28's checks on a CUDA machine, in one go: the efficiency table on T5-base shapes, the
# finetune runner on CUDA (bf16 autocast, --stop-after-steps + --resume against an uninterrupted
# run, generate, runners.predict), its out-of-memory message, and the tests that need CUDA.
#
#   bash benchmarks/gpu/run_on_gpu.sh WORK               on the GPU machine, from the repository root
#   REHEARSAL=1 bash benchmarks/gpu/run_on_gpu.sh WORK   the same steps, small, on the CPU
#
#   PARTS="compiled small-batch" bash benchmarks/gpu/run_on_gpu.sh WORK   only those parts (default: all)
#
# Parts: table, finetune, predict, oom, tests, compiled, small-batch (in that order). All of them take
# longer than one device call (10 minutes): a session runs the ones it needs, a few per call.
# Every step has its own time limit and the script goes on when one fails; WORK gets the outputs,
# log.txt the whole console. PYTHON picks the interpreter (default python3). On an H200 the steps
# took: efficiency 261 s, the three finetune runs 87 s, predict 33 s, the OOM probe 18 s, the
# tests 36 s (benchmarks/results/gpu-2026-12-04/README.md).
set -u
WORK=${1:?usage: run_on_gpu.sh WORK}
mkdir -p "$WORK"
exec > >(tee "$WORK/log.txt") 2>&1
source "$(dirname "$0")/checkout.sh"   # the environment, PYTHON, and this checkout installed

if [ "${REHEARSAL:-0}" = 1 ]; then
  EFFICIENCY=(--device cpu --config tiny --batch-size 4 --source-length 16 --warmup 1 --steps 1 --repeats 2)
  EFFICIENCY_SMALL_BATCH=("${EFFICIENCY[@]}")
  RUNNER=(--cpu)
  PREDICT=(--cpu)
else
  EFFICIENCY=(--device cuda --dtype bf16 --config t5-base --batch-size 32 --source-length 128 --warmup 3 --steps 10 --repeats 5)
  EFFICIENCY_SMALL_BATCH=(--device cuda --dtype bf16 --config t5-base --batch-size 8 --source-length 128 --warmup 3 --steps 10 --repeats 5)
  RUNNER=(--precision bf16)
  PREDICT=()
fi

step() { echo; echo "=== $(date -u +%H:%M:%S) $*"; }
PARTS=${PARTS:-all}
want() { [ "$PARTS" = all ] || [[ " $PARTS " == *" $1 "* ]]; }

finish() { echo "--- exit status $? after $((SECONDS - started)) s"; }

step machine
started=$SECONDS
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || echo "(no nvidia-smi)"
$PYTHON -c "import platform, torch, transformers, huggingface_hub, sentencepiece, tokenizers; \
print('python', platform.python_version(), 'torch', torch.__version__, 'cuda', torch.version.cuda, \
'transformers', transformers.__version__, 'huggingface_hub', huggingface_hub.__version__, \
'tokenizers', tokenizers.__version__, 'sentencepiece', sentencepiece.__version__); \
print('device', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"
finish

if want table; then
step "efficiency, batch 32 x 128 (the table)"
started=$SECONDS
timeout 300 $PYTHON -m runners.efficiency "${EFFICIENCY[@]}" --large-apply none --output-dir "$WORK/efficiency-b32"
finish

fi

if want finetune; then
step "finetune on the device: one epoch, uninterrupted"
started=$SECONDS
timeout 150 $PYTHON -m runners.finetune --epochs 1 --no-progress "${RUNNER[@]}" --output-dir "$WORK/finetune-whole"
finish

step "finetune: the same run stopped after 30 steps, then --resume"
started=$SECONDS
timeout 150 $PYTHON -m runners.finetune --epochs 1 --no-progress "${RUNNER[@]}" --stop-after-steps 30 \
  --output-dir "$WORK/finetune-resumed"
timeout 150 $PYTHON -m runners.finetune --resume "$WORK/finetune-resumed" --no-progress
finish
$PYTHON benchmarks/gpu/compare_runs.py "$WORK/finetune-whole" "$WORK/finetune-resumed"

fi

if want predict && want finetune; then
step "runners.predict on the device (generate, greedy and 3 beams) with the uninterrupted run's adapter"
started=$SECONDS
for beams in 1 3; do
  timeout 120 $PYTHON -m runners.predict "$WORK/finetune-whole" "${PREDICT[@]}" --no-progress --num-beams $beams \
    --input runners/embedded/world2/glue/sst2/test.jsonl --output "$WORK/predict-beams$beams.jsonl"
done
finish
$PYTHON - "$WORK" <<'PY'
import json, sys
from pathlib import Path
sys.path.insert(0, "benchmarks/gpu")
from compare_runs import predictions
work = Path(sys.argv[1])
training = predictions(next(work.glob("finetune-whole/*/*/seed-*")))
for beams in (1, 3):
    path = work / f"predict-beams{beams}.jsonl"
    if path.exists():
        rows = [json.loads(line)["prediction"] for line in path.read_text().splitlines()]
        same = sum(a == b for a, b in zip(rows, training))
        print(f"predict --num-beams {beams}: {same} of {len(training)} rows as the run's own test predictions")
PY

fi

if [ "${REHEARSAL:-0}" != 1 ] && want oom; then
  step "out of GPU memory: batch 2000 (the whole training set) with the process capped at 0.2 % of the card"
  started=$SECONDS
  timeout 150 $PYTHON benchmarks/gpu/oom_probe.py 0.002 --epochs 1 --batch-size 2000 --no-progress \
    --output-dir "$WORK/finetune-oom"
  finish
fi

if want tests; then
step "the tests that need CUDA (skipped on the CPU), and the efficiency runner's tests"
started=$SECONDS
timeout 240 $PYTHON -m pytest -p no:cacheprovider -o addopts="" -q -rs tests/test_phm_layers.py tests/test_efficiency.py \
  tests/test_resume.py
finish

fi

if want compiled; then
step "efficiency, batch 32 x 128, every row through torch.compile (compacter++, compacter, the references)"
started=$SECONDS
timeout 420 $PYTHON -m runners.efficiency "${EFFICIENCY[@]}" --recipes compacter++ compacter --compile --large-apply none \
  --output-dir "$WORK/efficiency-b32-compiled"
finish
fi

if want small-batch; then
step "efficiency, batch 8 x 128"
started=$SECONDS
timeout 240 $PYTHON -m runners.efficiency "${EFFICIENCY_SMALL_BATCH[@]}" --large-apply none --output-dir "$WORK/efficiency-b8"
finish
fi
step done
