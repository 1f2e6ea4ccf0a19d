"""Worker processes for tests: forked from one clean forkserver, never from the pytest process.

A fork of the pytest process inherits whatever its threads held at that moment (OpenMP and
allocator locks, thread pools of earlier tests): CI hung for 90 minutes on such a fork. The
forkserver is its own fresh interpreter that imported the runner once (torch, transformers,
surgery) and has run nothing; each worker is a fork of *it*, so workers start in about a second
instead of the ~7 s a spawned interpreter pays for its imports.

    >>> forkserver_context().get_start_method()
    'forkserver'
"""

from __future__ import annotations

import multiprocessing
import time

PRELOAD = ["runners.finetune.run", "runners.finetune.parallel"]


def forkserver_context():
    """The session's forkserver, preloading the runner (the preload applies when it first starts)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def _one_thread(rank: int, worker, *args) -> None:
    import torch

    torch.set_num_threads(1)  # two workers on two cores
    worker(rank, *args)


def run_workers(worker, args: tuple, nprocs: int = 2, timeout: float = 240.0) -> None:
    """Run ``worker(rank, *args)`` in ``nprocs`` processes and wait for all of them.

    A worker's exception is raised here (torch's ProcessRaisedException, with its traceback);
    workers still running after ``timeout`` seconds are killed and the test fails saying so,
    instead of hanging the suite."""
    import pytest
    import torch.multiprocessing as mp

    forkserver_context()
    processes = mp.start_processes(_one_thread, args=(worker, *args), nprocs=nprocs, join=False,
                                   start_method="forkserver")
    deadline = time.monotonic() + timeout
    while not processes.join(timeout=max(0.1, deadline - time.monotonic())):
        if time.monotonic() >= deadline:
            for process in processes.processes:
                process.kill()
            pytest.fail(f"{worker.__name__}: {nprocs} workers still running after {timeout:.0f} s; killed")


def slow_mkdir(path: str, seconds: float) -> None:
    """A call that marks its start (``PATH.started``), takes a while, then makes PATH (tests of what a
    pool starts after a stop)."""
    import os

    os.mkdir(path + ".started")
    time.sleep(seconds)
    os.mkdir(path)


def mkdir_and_maybe_stop(path: str, stop: bool) -> str:
    """Makes PATH; with `stop`, says that no further call of its pool starts (as a run stopped by a
    signal does in a worker of --jobs)."""
    import os

    from runners.finetune.parallel import stop_further_calls

    os.mkdir(path)
    if stop:
        stop_further_calls()
    return path
