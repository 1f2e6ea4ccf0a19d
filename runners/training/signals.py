"""SIGINT/SIGTERM during training: stop at the next step boundary, with a checkpoint."""

from __future__ import annotations

import signal
from typing import Any


class StopSignal:
    """SIGINT/SIGTERM ask training to stop at the next step boundary (a second SIGINT aborts).

    >>> with StopSignal() as stop:
    ...     signal.raise_signal(signal.SIGTERM)
    >>> stop.received
    'SIGTERM'
    """

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignal:
        try:
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        except ValueError:  # not the main thread: no handlers, training still works
            pass
        return self

    def _handle(self, number: int, frame) -> None:
        if self.received and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signal.Signals(number).name

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
