"""Where surgery puts what it adds, and how to recognise it by name.

* ``<block>.spliced.<site>``  — modules spliced into a block's graph;
* ``surgery.<...>``           — model-level modules (the shared rule, a prompt, ...);
* ``<module>.surgery_<...>``  — tensors a method attaches to an existing module (BitFit's biases).

Everything else is the base model.
"""

SPLICED = "spliced"
STATE = "surgery"
ATTACHED_PREFIX = "surgery_"


def is_added(name: str) -> bool:
    """True for a parameter/buffer name that surgery added (not part of the base model)."""
    parts = name.split(".")
    return SPLICED in parts[1:] or parts[0] == STATE or any(part.startswith(ATTACHED_PREFIX) for part in parts)
