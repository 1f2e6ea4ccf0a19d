"""`python -m runners.finetune` with a world-2 benchmark folder registered as tasks `probe-sst2` …

    python benchmarks/results/world2-2026-12-02/probe_dir.py GLUE_DIR --task probe-sst2 --model CHECKPOINT ...

GLUE_DIR is the `glue/` folder of a world built with `python -m runners.embedded.world2.build --out`;
the tasks take the embedded protocol (benchmark "embedded").
"""
import dataclasses, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from runners.tasks import registry
from runners.embedded.world2.tasks import WORLD2_TASKS

glue = Path(sys.argv[1])
tasks = {name.replace("world2-", "probe-"): dataclasses.replace(task, name=name.replace("world2-", "probe-"), benchmark="embedded",
                                                               local_dir=glue / name.removeprefix("world2-"))
         for name, task in WORLD2_TASKS.items()}
registry.TASKS.update(tasks)
registry._BY_KEY.update({registry._key(n): t for n, t in tasks.items()})
from runners import finetune
sys.exit(finetune.main(sys.argv[2:]))
