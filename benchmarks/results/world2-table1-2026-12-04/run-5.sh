#!/bin/bash
# Issue 29, item 4: seed 43 of the Table 1 recipes other than compacter++ and full fine-tuning (theirs:
# ../world2-seeds-2026-12-04), two recipes an invocation so that rows complete, the paper's own
# methods first; two runs side by side, one thread each. Each part resumes where it stopped:
# bash benchmarks/results/world2-table1-2026-12-04/run-5.sh
cd "$(dirname "$0")/../../.."
out=benchmarks/results/world2-table1-2026-12-04
for part in seed-43-c1:compacter,phm-adapter seed-43-c2:adapter,adapter-lowrank seed-43-c3:pfeiffer-adapter,adapterdrop \
            seed-43-c4:bitfit,peft-lora; do
  name=${part%%:*} recipes=${part#*:}
  if [ -e "$out/$name/arguments.json" ]; then
    python3 -m runners.finetune --resume "$out/$name" --no-progress >> "$out/$name.log" 2>&1
  else
    python3 -m runners.finetune --task world2-glue --recipe "$recipes" --seeds 43 --jobs 2 --no-progress \
      --output-dir "$out/$name" > "$out/$name.log" 2>&1
  fi
done
