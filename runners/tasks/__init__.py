"""What the runners train and score on, shared by every command.

* ``registry``: the GLUE / SuperGLUE tasks of the Compacter paper (and the embedded demo) as T5
  text-to-text — :class:`Task`, :data:`TASKS`, :func:`get_task`;
* ``data``: reading local split files or the Hub, and the paper's validation/test split;
* ``metrics``: the paper's metrics, with explicit rules for predictions that are not a label.

>>> get_task("cb").labels
('entailment', 'contradiction', 'neutral')
"""

from .registry import TASKS, Task, get_task

__all__ = ["TASKS", "Task", "get_task"]
