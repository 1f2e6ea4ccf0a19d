#!/bin/bash
# Issue 29, item 4: the miniature Figure 4 at one more seed (43 unless given): compacter++ and full
# fine-tuning with --low-resource 100/500/1000 (`figure4-N-sSEED`; the 2,000 point is the Table 1 runs
# of that seed, ../world2-seeds-2026-12-04). Two runs side by side, one thread each; each part resumes
# where it stopped, and a part that fails or is interrupted ends the script (seed 42: run-4.sh):
# bash benchmarks/results/world2-table1-2026-12-04/run-6.sh [SEED]
cd "$(dirname "$0")/../../.."
out=benchmarks/results/world2-table1-2026-12-04
seed=${1:-43}
for size in 100 500 1000; do
  name=figure4-$size-s$seed
  if [ -e "$out/$name/arguments.json" ]; then
    python3 -m runners.finetune --resume "$out/$name" --no-progress >> "$out/$name.log" 2>&1 || exit $?
  else
    python3 -m runners.finetune --task world2-glue --recipe compacter++,full-finetune --seeds "$seed" --jobs 2 \
      --no-progress --low-resource "$size" --output-dir "$out/$name" > "$out/$name.log" 2>&1 || exit $?
  fi
done
