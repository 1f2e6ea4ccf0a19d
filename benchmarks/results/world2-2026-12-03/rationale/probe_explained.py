"""`python -m runners.finetune` (or `runners.predict`) with a world-2 benchmark folder whose rows carry a
`rationale` (`build_explained.py`, `build_rationale.py`, or `python -m runners.embedded.world2.build --out`),
registered twice per task:

- `probe-<task>`: the label alone (the world-2 tasks before they wrote a rationale);
- `probe-<task>-explained`: target `<rationale> ; <label>` (`Task.rationale_column`), pretraining's
  `explain:` answer for the words that decide the label and then the label; scored on what follows
  the last `;` (`Task.answer`; a prediction without one is scored as it stands).

    python probe_explained.py GLUE_DIR --task probe-cola-explained --recipe compacter++ --model M --max-target-length 24 ...
    python probe_explained.py GLUE_DIR predict RUN_DIR --input GLUE_DIR/cola/test.jsonl --output P.jsonl
"""
import dataclasses, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[4]))
from runners.tasks import registry
from runners.embedded.world2.tasks import WORLD2_TASKS

glue = Path(sys.argv[1])
tasks = {}
for name, task in WORLD2_TASKS.items():
    short = name.removeprefix("world2-")
    if not (glue / short).is_dir():
        continue
    label_only = tuple(c for c in task.columns if c != "rationale")
    tasks[f"probe-{short}"] = dataclasses.replace(task, name=f"probe-{short}", local_dir=glue / short,
                                                  columns=label_only, rationale_column=None)
    tasks[f"probe-{short}-explained"] = dataclasses.replace(task, name=f"probe-{short}-explained", local_dir=glue / short,
                                                            columns=label_only + ("rationale",), rationale_column="rationale")
registry.TASKS.update(tasks)
registry._BY_KEY.update({registry._key(n): t for n, t in tasks.items()})
if sys.argv[2:3] == ["predict"]:
    from runners import predict
    sys.exit(predict.main(sys.argv[3:]))
from runners import finetune
sys.exit(finetune.main(sys.argv[2:]))
