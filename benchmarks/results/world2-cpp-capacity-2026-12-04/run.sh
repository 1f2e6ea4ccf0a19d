#!/bin/bash
# Is compacter++'s gap to full fine-tuning on world2-cola and world2-stsb the capacity of its one
# adapter a block? Its learning rate is not (../world2-cpp-lr-2026-12-04). Seed 42, the embedded
# protocol; the bottleneck 4x wider (reduction factor 8: k = 48 instead of 12 on d_model 384).
cd "$(dirname "$0")/../../.."
out=benchmarks/results/world2-cpp-capacity-2026-12-04
python3 -m runners.finetune --task world2-cola,world2-stsb --recipe compacter++ --sweep options.reduction_factor=8 \
  --seed 42 --jobs 1 --no-progress --output-dir "$out/sweep" > "$out/sweep.log" 2>&1
# Then the other three tasks at reduction factor 8 (an average over all five), and cola and stsb at 4 (k = 96).
python3 -m runners.finetune --task world2-sst2,world2-mrpc,world2-mnli --recipe compacter++ --sweep options.reduction_factor=8 \
  --seed 42 --jobs 1 --no-progress --output-dir "$out/sweep-8" > "$out/sweep-8.log" 2>&1
python3 -m runners.finetune --task world2-cola,world2-stsb --recipe compacter++ --sweep options.reduction_factor=4 \
  --seed 42 --jobs 1 --no-progress --output-dir "$out/sweep-4" > "$out/sweep-4.log" 2>&1
# Reduction factor 8 on all five tasks at seeds 43 and 44 as well (three seeds, against full fine-tuning's).
python3 -m runners.finetune --task world2-glue --recipe compacter++ --sweep options.reduction_factor=8 \
  --seeds 43 44 --jobs 1 --no-progress --output-dir "$out/sweep-8-s4344" > "$out/sweep-8-s4344.log" 2>&1
