"""Figure files of the plot runners: the path checked before any work, the file written whole.

:func:`check_figure_path` refuses, with the option, the path and what is valid, a path that
cannot be written or whose suffix names no format matplotlib writes (without a suffix matplotlib
would write ``NAME.png`` instead, not the file asked for). :func:`write_figure` writes through a
temporary file renamed in one step, and a Ctrl-C waits until the file is whole.

>>> from pathlib import Path
>>> check_figure_path(Path("figure4"))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
runners.errors.UsageError: --output figure4: no format suffix; give one that matplotlib writes (... png, ...), e.g. figure4.png
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runners.command import interrupts_deferred
from runners.errors import UsageError
from runners.output_folder import check_output_file, write_whole


def figure_formats() -> list[str]:
    """The file formats matplotlib writes here (by suffix, lower case)."""
    from matplotlib.backend_bases import FigureCanvasBase

    return sorted(FigureCanvasBase.get_supported_filetypes())


def figure_format(path: Path) -> str:
    """The format a figure path names by its suffix, lower case ('' for none): ``x.PNG`` → ``png``."""
    return path.suffix.lower().removeprefix(".")


def check_figure_path(path: Path, option: str = "--output") -> None:
    """Refuse a figure path that cannot be written, or whose suffix is no format matplotlib writes."""
    check_output_file(path, option, "figure.png")
    formats = figure_formats()
    suffix = figure_format(path)
    if suffix not in formats:
        what = f"format {path.suffix!r} is not one" if suffix else "no format suffix; give one"
        raise UsageError(f"{option} {path}: {what} that matplotlib writes ({', '.join(formats)}), "
                         f"e.g. {path.with_suffix('.png').name}")


def write_figure(figure: Any, path: Path, dpi: int = 150) -> None:
    """Save a matplotlib `figure` to `path` (its folder made if missing), whole or not at all."""
    file_format = figure_format(path) or None
    with interrupts_deferred():  # Ctrl-C waits until the file is whole
        write_whole(path, lambda temporary: figure.savefig(temporary, format=file_format, dpi=dpi))
