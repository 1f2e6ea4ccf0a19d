#!/bin/bash
# Is compacter++'s gap to full fine-tuning on world2-cola and world2-stsb its learning rate? The
# protocol's 3e-2 (seed 42: MCC 36.9, Pearson 3.1) against the grid's neighbours 3e-3 and 3e-1, seed 42.
cd "$(dirname "$0")/../../.."
out=benchmarks/results/world2-cpp-lr-2026-12-04
python3 -m runners.finetune --task world2-cola,world2-stsb --recipe compacter++ --sweep lr=3e-3,3e-1 --seed 42 \
  --jobs 2 --no-progress --output-dir "$out/sweep" > "$out/sweep.log" 2>&1
