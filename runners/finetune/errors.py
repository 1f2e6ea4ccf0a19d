"""The errors `runners.finetune` reports without a traceback, and its exit codes."""

from __future__ import annotations

from runners.errors import EXIT_INTERRUPTED, EXIT_OUT_OF_MEMORY, EXIT_USAGE, UsageError  # shared by every runner
# NonFiniteLoss is the training core's (the pretraining runner raises it too); importable from here.
from runners.training.errors import NonFiniteLoss

__all__ = ["EXIT_INTERRUPTED", "EXIT_OUT_OF_MEMORY", "EXIT_USAGE", "NonFiniteLoss", "TrainingSetupError", "UsageError"]


class TrainingSetupError(ValueError):
    """Settings that cannot work together (batch vs processes, a resume that does not match)."""
