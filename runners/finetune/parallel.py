"""Several runs side by side on the CPU (``--jobs N``): N spawned worker processes, one torch thread each.

On a few cores, small models train faster as N one-thread runs side by side than as one run with N
threads (their matrices are too small to keep several threads busy), so a grid of runs (tasks ×
recipes × seeds) finishes sooner this way. Each run computes exactly what it computes alone.

    run_in_processes(function, calls, workers, on_done)
      ├─ a pool of `workers` processes started with "spawn" (no state shared with the parent)
      ├─ each call: function(*arguments) in some worker (a module-level function: pickled by name),
      │  unless stop was said (`stop`: an Event every worker holds; the parent or a call sets it)
      └─ on_done(position, result) in the parent as calls finish (not for a call that did not
         start); the results in call order, NOT_STARTED for those

A call that raises ends the whole: no further call starts (the call says stop itself, in its
worker, before its error reaches the parent), the running ones finish, and the error is raised in the
parent (a run that diverges is no error: it returns its record).
A SIGINT (Ctrl-C) reaches the workers too: each one stops its run at the next step boundary with a
resumable checkpoint (as a single run does), no further call starts, and KeyboardInterrupt is
raised in the parent once the workers have returned. "No further call": the parent cancels the
calls still waiting and sets `stop`, which the calls the pool had already handed to a worker's
queue read before they start (without it each worker went on to train one more whole run after
Ctrl-C: measured). An idle worker ignores SIGINT and waits for that word. A call can say it too
(`stop_further_calls`): a run that a signal stopped does, since its worker takes the next call
before the parent has heard. A worker whose parent dies (SIGKILL, say) is killed too (Linux): its
run resumes from its last complete checkpoint.

>>> import operator
>>> run_in_processes(operator.add, [(1, 2), (3, 4)], workers=2)
[3, 7]
"""

from __future__ import annotations

import enum
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any


_STOP: Any = None  # in a worker: the parent's Event, set once the invocation is interrupted or failed


def _start_worker(stop: Any) -> None:
    import signal

    import torch

    global _STOP
    _STOP = stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a training run installs its own handler (StopSignal)
    torch.set_num_threads(1)
    _stop_when_the_parent_dies()


def _call_unless_stopped(function: Callable[..., Any], arguments: tuple) -> Any:
    """`function(*arguments)`, or NOT_STARTED when stop has been said. A call that raises says stop
    itself before its error travels back: its worker takes the next call before the parent has heard,
    and that call must not start."""
    if _STOP is not None and _STOP.is_set():
        return NOT_STARTED
    try:
        return function(*arguments)
    except BaseException:
        stop_further_calls()
        raise


class _Unstarted(enum.Enum):
    """What a call that did not start gives back: an Enum member, which a worker's pickle returns
    as this very object, so `is` tells it from any result a call can return (an array's `!=` cannot)."""

    NOT_STARTED = "not started: the invocation was stopped"


NOT_STARTED = _Unstarted.NOT_STARTED


def stop_further_calls() -> None:
    """Called in a worker: no call of this pool that has not started yet starts, in any worker (the
    parent's own stop on Ctrl-C or a failed call, said from inside a call). Outside a pool: nothing."""
    if _STOP is not None:
        _STOP.set()


def _stop_when_the_parent_dies() -> None:
    """On Linux, a worker is killed when its parent dies (SIGKILL, say), so no run is left training
    orphaned; its run resumes from its last complete checkpoint. (SIGKILL, not SIGTERM: a worker that
    stops gracefully then blocks on the dead parent's queue and never exits; measured.)"""
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def run_in_processes(function: Callable[..., Any], calls: Sequence[tuple], workers: int,
                     on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
    """``[function(*arguments) for arguments in calls]``, computed by `workers` processes."""
    results: list[Any] = [None] * len(calls)
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker,
                             initargs=(stop,)) as pool:
        pending = {pool.submit(_call_unless_stopped, function, arguments): position
                   for position, arguments in enumerate(calls)}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    position = pending.pop(future)
                    results[position] = future.result()
                    if on_done is not None and results[position] is not NOT_STARTED:
                        on_done(position, results[position])
        except BaseException:  # KeyboardInterrupt, or a call's error: start nothing more
            stop.set()
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return results
