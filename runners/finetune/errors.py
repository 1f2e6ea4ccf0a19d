"""The errors `runners.finetune` reports without a traceback, and its exit codes."""

from __future__ import annotations

# NonFiniteLoss is the training core's (the pretraining runner raises it too); importable from here.
from runners.training.errors import NonFiniteLoss

__all__ = ["EXIT_INTERRUPTED", "EXIT_OUT_OF_MEMORY", "EXIT_USAGE", "NonFiniteLoss", "TrainingSetupError", "UsageError"]

EXIT_USAGE, EXIT_OUT_OF_MEMORY, EXIT_INTERRUPTED = 2, 3, 130


class UsageError(Exception):
    """A problem with the command line, data, model, recipe or output folder: one line, exit 2."""


class TrainingSetupError(ValueError):
    """Settings that cannot work together (batch vs processes, a resume that does not match)."""

