#!/bin/bash
# Issue 29, item 4: world 2's miniature Table 1, seed 42, the other recipes, a few at a time so that
# each invocation completes whole rows (BitFit, Pfeiffer, AdapterDrop and Adapter-LowRank at world
# 2's searched 3e-2: runners.finetune.protocol LEARNING_RATES["world2"]). Resumable, e.g.
# python3 -m runners.finetune --resume benchmarks/results/world2-table1-2026-12-04/seed-42-b1
cd "$(dirname "$0")/../../.."
out=benchmarks/results/world2-table1-2026-12-04
lora=benchmarks/results/world2-lr-2026-12-04/sst2-peft-lora
for part in b1:bitfit,pfeiffer-adapter b2:adapterdrop,adapter-lowrank lora-search b3:intrinsic-said b4:prompt-tuning-r,prompt-tuning-t; do
  if [ "$part" = lora-search ]; then  # item 3 for PEFT's LoRA (r = 1), which the GPU machine could not run (no peft there)
    if [ -e "$lora/arguments.json" ]; then
      python3 -m runners.finetune --resume "$lora" --no-progress > "$lora.resumed.log" 2>&1 || exit $?
    else
      python3 -m runners.finetune --task world2-sst2 --recipe peft-lora --sweep lr=3e-5,3e-4,3e-3,3e-2,3e-1 --seed 1 \
        --jobs 2 --no-progress --output-dir "$lora" > "$lora.log" 2>&1 || exit $?
    fi
    continue
  fi
  name=${part%%:*} recipes=${part#*:}
  if [ -e "$out/seed-42-$name/arguments.json" ]; then
    python3 -m runners.finetune --resume "$out/seed-42-$name" --no-progress > "$out/seed-42-$name.resumed.log" 2>&1 || exit $?
  else
    python3 -m runners.finetune --task world2-glue --recipe "$recipes" --seeds 42 --jobs 2 --no-progress \
      --output-dir "$out/seed-42-$name" > "$out/seed-42-$name.log" 2>&1 || exit $?
  fi
done
