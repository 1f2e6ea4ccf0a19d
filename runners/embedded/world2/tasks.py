"""World 2's five tasks as runner tasks: ``world2-sst2`` … (group ``world2-glue``), beside world 1's ``embedded-*``.

They are registered in the runners' registry (``runners.tasks.TASKS``) and follow the embedded
protocol; a run of one without ``--model`` trains world 2's pretrained T5 (``model/``), the model
whose corpus states what the held-out words mean (``Task.model_dir``). The model writes each row's
rationale before the label (``Task.rationale_column``) and is scored on the label.

>>> task = WORLD2_TASKS["world2-mnli"]
>>> task.to_text({"hypothesis": "h .", "premise": "p .", "label": 1, "rationale": "bird ; toy"})
('mnli hypothesis: h . premise: p .', 'bird ; toy ; maybe')
>>> WORLD2_TASKS["world2-stsb"].to_text({"sentence1": "a .", "sentence2": "b .", "label": 3.5, "rationale": "r"})[1]
'r ; 3.6'
>>> task.answer("teacher from giten ; yes")
'yes'
>>> world2_task("sst2").model_dir.name
'model'
"""

from __future__ import annotations

from runners.tasks.registry import TASK_GROUPS, TASKS, Task

WORLD2_TASKS: dict[str, Task] = {name: TASKS[name] for name in TASK_GROUPS["world2-glue"]}


def world2_task(short: str) -> Task:
    """The runner task of one of world 2's benchmark tasks (``short``: sst2, cola, mrpc, mnli, stsb)."""
    return WORLD2_TASKS[f"world2-{short}"]
