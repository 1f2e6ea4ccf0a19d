"""World 2's five tasks as runner tasks (``world2-sst2`` …), beside world 1's ``embedded-*``.

They are not in the runners' registry yet (``runners.tasks.TASKS``): world 2 lives beside world 1
until its checkpoint helps on more than sst2. Switching over registers them there (see the README
of this folder).

>>> task = WORLD2_TASKS["world2-mnli"]
>>> task.to_text({"hypothesis": "h .", "premise": "p .", "label": 1})
('mnli hypothesis: h . premise: p .', 'maybe')
>>> WORLD2_TASKS["world2-stsb"].to_text({"sentence1": "a .", "sentence2": "b .", "label": 3.5})[1]
'3.6'
"""

from __future__ import annotations

from runners.tasks.formats import stsb_scores, stsb_target
from runners.tasks.registry import Task

from . import BENCHMARK_DIR
from .benchmark import LABELS, TASK_FIELDS

METRICS = {"sst2": ("accuracy",), "cola": ("matthews_corrcoef",), "mrpc": ("f1", "accuracy"), "mnli": ("accuracy",),
           "stsb": ("pearson", "spearman")}


def world2_task(short: str) -> Task:
    """The runner task of one of world 2's benchmark tasks (``short``: sst2, cola, mrpc, mnli, stsb)."""
    prefix, columns = TASK_FIELDS[short]
    return Task(name=f"world2-{short}", benchmark="world2", hub=None, columns=columns + ("label",),
                labels=LABELS[short], metric_names=METRICS[short], size="presplit", test_split="test",
                source_columns=columns, prefix=prefix, local_dir=BENCHMARK_DIR / short,
                **({"format_target": stsb_target, "scorer": stsb_scores} if short == "stsb" else {}))


WORLD2_TASKS: dict[str, Task] = {f"world2-{short}": world2_task(short) for short in TASK_FIELDS}
