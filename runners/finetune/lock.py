"""One process per output folder: `runners.output_folder.OutputLock`, shared by every runner.

Kept under this name so that ``from runners.finetune.lock import OutputLock`` keeps working; the
lock and the overwrite policy live in `runners.output_folder`.
"""

from __future__ import annotations

from runners.output_folder import LOCK_FILE, OutputLock

__all__ = ["LOCK_FILE", "OutputLock"]
