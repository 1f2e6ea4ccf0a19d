"""The share of a finished run's test outputs that were no valid answer, for runs whose ``result.json``
was written before it kept that share (2026-12-05): computed from the ``test_predictions.jsonl``
and ``task.json`` beside it, by the rule new runs use (`Task.invalid_percent`).

>>> import json, tempfile
>>> from pathlib import Path
>>> run = Path(tempfile.mkdtemp())
>>> _ = (run / "task.json").write_text(json.dumps({"task": "sst2", "task_type": "classification",
...                                                "text_columns": ["sentence"], "labels": ["negative", "positive"]}))
>>> _ = (run / "test_predictions.jsonl").write_text(
...     "".join(json.dumps({"prediction": p}) + "\\n" for p in ("positive", "negative", "neutral", "positive")))
>>> share_from_predictions(run)
25.0
>>> share_from_predictions(run / "elsewhere") is None  # no predictions beside it: unknown
True
"""

from __future__ import annotations

import json
from pathlib import Path

from .jsonl_log import read_jsonl
from .task_data import PREDICTIONS_FILE


def share_from_predictions(run_dir: Path) -> float | None:
    """The percentage (0..100) of the run's test predictions that are no valid answer for its task; None
    where the files are missing or unreadable (the share then stays unknown, as it was)."""
    from runners.tasks.task_record import TASK_RECORD_FILE, task_from_record

    predictions, record = Path(run_dir) / PREDICTIONS_FILE, Path(run_dir) / TASK_RECORD_FILE
    if not predictions.is_file() or not record.is_file():
        return None
    try:
        task = task_from_record(json.loads(record.read_text(encoding="utf-8")))
        return task.invalid_percent([str(row["prediction"]) for row in read_jsonl(predictions)])
    except (OSError, ValueError, KeyError, TypeError):  # json errors are ValueErrors; no rows: ValueError
        return None
