"""Files written whole or not at all: `runners.output_folder.write_text` / `write_json`, shared by every runner.

Kept under this name so that ``from runners.finetune.atomic import write_text`` keeps working.
"""

from __future__ import annotations

from runners.output_folder import write_json, write_text

__all__ = ["write_json", "write_text"]
