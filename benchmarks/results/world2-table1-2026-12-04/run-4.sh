#!/bin/bash
# Issue 29, item 4, continued on the 2-core VM (no GPU lent this session), in this order:
# seed 42 of compacter++ and full fine-tuning again (`seed-42-c`; their first seed-42 folders were
# lost), then the miniature Figure 4 at seed 42 (`figure4-N`: --low-resource 100/500/1000, the 2,000
# point being the full training set, i.e. the Table 1 runs). Two runs side by side, one thread each.
# Each part resumes where it stopped (seed 43 of the other recipes: run-5.sh):
# bash benchmarks/results/world2-table1-2026-12-04/run-4.sh
cd "$(dirname "$0")/../../.."
out=benchmarks/results/world2-table1-2026-12-04
for part in seed-42-c:compacter++,full-finetune:42: figure4-100:compacter++,full-finetune:42:100 \
            figure4-500:compacter++,full-finetune:42:500 figure4-1000:compacter++,full-finetune:42:1000; do
  IFS=: read -r name recipes seed size <<< "$part"
  if [ -e "$out/$name/arguments.json" ]; then
    python3 -m runners.finetune --resume "$out/$name" --no-progress >> "$out/$name.log" 2>&1 || exit $?
  else
    python3 -m runners.finetune --task world2-glue --recipe "$recipes" --seeds "$seed" --jobs 2 --no-progress \
      ${size:+--low-resource "$size"} --output-dir "$out/$name" > "$out/$name.log" 2>&1 || exit $?
  fi
done
