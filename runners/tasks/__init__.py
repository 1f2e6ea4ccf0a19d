"""What the runners train and score on, shared by every command.

* ``registry``: the GLUE / SuperGLUE tasks of the Compacter paper and the embedded benchmark as
  T5 text-to-text — :class:`Task`, :data:`TASKS`, :func:`get_task`, task groups;
* ``formats``: how rows become source/target text and how predictions are scored;
* ``data``: reading local split files or the Hub, and the paper's validation/test split;
* ``metrics``: the paper's metrics, with explicit rules for predictions that are not a label.

>>> get_task("cb").labels
('entailment', 'contradiction', 'neutral')
"""

from .registry import TASK_GROUPS, TASKS, Task, expand_task_names, get_task

__all__ = ["TASKS", "TASK_GROUPS", "Task", "expand_task_names", "get_task"]
