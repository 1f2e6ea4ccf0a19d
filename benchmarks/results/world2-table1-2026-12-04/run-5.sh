#!/bin/bash
# Issue 29, item 4: one seed (43 unless given) of the Table 1 recipes other than compacter++ and full
# fine-tuning (theirs: ../world2-seeds-2026-12-04), two recipes an invocation so that rows complete,
# the paper's own methods first; two runs side by side, one thread each. Each part resumes where it
# stopped:
# bash benchmarks/results/world2-table1-2026-12-04/run-5.sh [SEED]
cd "$(dirname "$0")/../../.."
out=benchmarks/results/world2-table1-2026-12-04
seed=${1:-43}
for part in c1:compacter,phm-adapter c2:adapter,adapter-lowrank c3:pfeiffer-adapter,adapterdrop c4:bitfit,peft-lora; do
  name=seed-$seed-${part%%:*} recipes=${part#*:}
  if [ -e "$out/$name/arguments.json" ]; then
    python3 -m runners.finetune --resume "$out/$name" --no-progress >> "$out/$name.log" 2>&1 || exit $?
  else
    python3 -m runners.finetune --task world2-glue --recipe "$recipes" --seeds "$seed" --jobs 2 --no-progress \
      --output-dir "$out/$name" > "$out/$name.log" 2>&1 || exit $?
  fi
done
