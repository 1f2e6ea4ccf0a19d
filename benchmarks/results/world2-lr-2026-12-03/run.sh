#!/bin/bash
# Issue 29, item 3: every Table 1 recipe's learning rate searched over the paper's grid
# (3e-5 ... 3e-1) on world 2's default task under the final embedded protocol (rationale targets,
# 10 epochs, batch 32, dropout 0), seed 1 (the reported runs use 42-44), best on validation.
cd "$(dirname "$0")/../../.."
out=benchmarks/results/world2-lr-2026-12-03
python3 -m runners.finetune --task world2-sst2 \
  --recipe compacter++,full-finetune,compacter,phm-adapter,adapter,pfeiffer-adapter,adapterdrop,adapter-lowrank,bitfit,intrinsic-said,prompt-tuning-r,prompt-tuning-t,peft-lora \
  --sweep lr=3e-5,3e-4,3e-3,3e-2,3e-1 --seed 1 --jobs 2 --no-progress --output-dir "$out/sst2" "$@"
