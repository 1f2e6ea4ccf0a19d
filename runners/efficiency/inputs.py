"""What a run of `runners.efficiency` reads and writes, checked before any timing.

The timing run takes minutes; a ``--scores`` file that cannot be read or an ``--output-dir`` that
cannot be written used to fail only at its end. :func:`claim_inputs` reads the scores and claims
the output folder first (`runners.output_folder`: one process at a time, an earlier run replaced
only with ``--overwrite``), so a bad input costs one line and exit 2, and nothing is written.

>>> import argparse, tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "scores.csv").write_text("recipe,score\\ncompacter++,81.0\\n")
>>> read_scores(folder / "scores.csv")
{'compacter++': 81.0}
>>> _ = (folder / "cut.csv").write_text("recipe,score\\ncompacter++,81.0\\nadapter")
>>> read_scores(folder / "cut.csv")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
runners.errors.UsageError: --scores .../cut.csv, line 3: 1 field(s) where the header has 2 (a truncated file?); ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

from runners.csv_input import read_checked_csv
from runners.errors import UsageError
from runners.output_folder import ARGUMENTS_FILE, OutputLock, claim_output_folder, write_json
from runners.plot import SCORES_VALID, load_scores

RUNNER = "runners.efficiency"
OUTPUTS = ("efficiency.md", "efficiency.csv", "samples.json")  # an earlier run's files (also from before arguments.json)


def read_scores(path: Path) -> dict[str, float]:
    """Mean score per recipe from `path` (`runners.plot.load_scores`), or UsageError naming the file and line."""
    scores = read_checked_csv("--scores", path, load_scores, SCORES_VALID)
    if not scores:
        raise UsageError(f"--scores {path}: no scores in it; give {SCORES_VALID}")
    return scores


def claim_inputs(args: argparse.Namespace) -> tuple[dict[str, float] | None, OutputLock]:
    """The scores of ``--scores`` (None without it) and the locked ``--output-dir``, its arguments saved."""
    scores = read_scores(args.scores) if args.scores is not None else None
    lock = claim_output_folder(args.output_dir, RUNNER, overwrite=bool(args.overwrite), outputs=OUTPUTS,
                               resumable=False)
    try:
        write_json(Path(args.output_dir) / ARGUMENTS_FILE, {k: str(v) for k, v in vars(args).items()})
    except OSError as error:
        lock.release()
        raise UsageError(f"--output-dir {args.output_dir}: cannot write there ({error.strerror or error})") from None
    return scores, lock


__all__ = ["OUTPUTS", "RUNNER", "claim_inputs", "read_scores"]
