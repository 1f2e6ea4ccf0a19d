"""The error every runner reports as one line without a traceback, and the runners' exit codes.

>>> str(UsageError("--output-dir out.txt: is a file; give a folder"))
'--output-dir out.txt: is a file; give a folder'
"""

from __future__ import annotations

EXIT_USAGE, EXIT_OUT_OF_MEMORY, EXIT_INTERRUPTED = 2, 3, 130


class UsageError(Exception):
    """A problem with the command line, data, model, recipe or output folder: one line, exit 2."""
