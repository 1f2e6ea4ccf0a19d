#!/bin/bash
# Learning rates of the paper's grid on world 2's tasks other than sst2 (seed 42, one thread each).
cd "$(dirname "$0")/../../../.."
out=benchmarks/results/world2-2026-12-03/lr
for spec in "$@"; do  # task:recipe:lr
  IFS=: read task recipe lr <<< "$spec"
  python3 -m runners.finetune --task "world2-$task" --recipe "$recipe" --lr "$lr" --seed 42 --threads 1 --no-progress \
    --output-dir "$out/$task-$recipe-$lr" > "$out/$task-$recipe-$lr.log" 2>&1
done
