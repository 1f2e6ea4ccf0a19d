"""Several runs side by side on the CPU (``--jobs N``): N spawned worker processes, one torch thread each.

On a few cores, small models train faster as N one-thread runs side by side than as one run with N
threads (their matrices are too small to keep several threads busy), so a grid of runs (tasks ×
recipes × seeds) finishes sooner this way. Each run computes exactly what it computes alone.

    run_in_processes(function, calls, workers, on_done)
      ├─ a pool of `workers` processes started with "spawn" (no state shared with the parent)
      ├─ each call: function(*arguments) in some worker (a module-level function: pickled by name)
      └─ on_done(position, result) in the parent as calls finish; the results in call order

A call that raises ends the whole: the calls not started are cancelled, the running ones finish, and
the error is raised in the parent (a run that diverges is no error: it returns its record).
A SIGINT (Ctrl-C) reaches the workers too: each one stops its run at the next step boundary with a
resumable checkpoint (as a single run does), the calls not started are cancelled, and
KeyboardInterrupt is raised in the parent once the workers have returned. A worker whose parent
dies (SIGKILL, say) is killed too (Linux): its run resumes from its last complete checkpoint.

>>> import operator
>>> run_in_processes(operator.add, [(1, 2), (3, 4)], workers=2)
[3, 7]
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)
    _stop_when_the_parent_dies()


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
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_one_thread) as pool:
        pending = {pool.submit(function, *arguments): position for position, arguments in enumerate(calls)}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    position = pending.pop(future)
                    results[position] = future.result()
                    if on_done is not None:
                        on_done(position, results[position])
        except BaseException:  # KeyboardInterrupt, or a call's error: start nothing more
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return results
