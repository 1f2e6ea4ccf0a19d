#!/bin/bash
# Issue 29, item 4: world 2's miniature Table 1, seed 42, recipes whose world-2 search
# (benchmarks/results/world2-lr-2026-12-04) chose the rate the protocol already had. Resumable:
# python3 -m runners.finetune --resume benchmarks/results/world2-table1-2026-12-04/seed-42-a
cd "$(dirname "$0")/../../.."
python3 -m runners.finetune --task world2-glue --recipe compacter,adapter,phm-adapter --seeds 42 --jobs 2 \
  --no-progress --output-dir benchmarks/results/world2-table1-2026-12-04/seed-42-a "$@"
