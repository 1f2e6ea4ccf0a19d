#!/bin/bash
# Issue 29, item 4 (part): compacter++ and full fine-tuning on world 2's five tasks from the shipped
# checkpoint, seeds 43 and 44, and from random init, seeds 43 and 44 (seed 42 of all four:
# benchmarks/results/world2-multiword-2026-12-03), two runs side by side with one thread each.
# Resumable: python3 -m runners.finetune --resume DIR.
cd "$(dirname "$0")/../../.."
out=benchmarks/results/world2-seeds-2026-12-04
tasks=world2-mrpc,world2-mnli,world2-cola,world2-stsb,world2-sst2
python3 -m runners.finetune --task $tasks --recipe compacter++,full-finetune --seeds 43 44 --jobs 2 \
  --no-progress --output-dir "$out/pretrained" > "$out/pretrained.log" 2>&1
python3 -m runners.finetune --task $tasks --recipe compacter++,full-finetune --seeds 43 44 --jobs 2 \
  --random-init --no-progress --output-dir "$out/random-init" > "$out/random-init.log" 2>&1
