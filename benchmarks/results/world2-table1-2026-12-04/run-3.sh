#!/bin/bash
# Issue 29, item 4: the LoRA row (PEFT's own LoRA, r = 1: 9,216 parameters against Compacter++'s
# 13,720), seed 42, at 3e-3 (its world-2 search, benchmarks/results/world2-lr-2026-12-04/sst2-peft-lora).
# Resumable: python3 -m runners.finetune --resume benchmarks/results/world2-table1-2026-12-04/seed-42-lora
cd "$(dirname "$0")/../../.."
python3 -m runners.finetune --task world2-glue --recipe peft-lora --seeds 42 --jobs 2 --no-progress \
  --output-dir benchmarks/results/world2-table1-2026-12-04/seed-42-lora "$@"
