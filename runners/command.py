"""How every runner is started: ``python -m runners.X`` imports nothing heavy before it needs to,
and Ctrl-C at any moment, its start-up imports included, ends it with one line and exit 130.

A runner's ``__main__`` (or its ``if __name__ == "__main__"`` block) hands its entry point to
:func:`run_command`, by module name so that the import itself is covered::

    from runners.command import run_command

    if __name__ == "__main__":
        run_command("runners.finetune.cli")

What the entry point returns becomes the exit status (an int; anything else is success).
Under torchrun the process group the run started is destroyed before the process exits, however the
entry point ended (a gloo group left to the interpreter's shutdown can abort it, "terminate called
without an active exception", after the run itself had finished).
A ``KeyboardInterrupt`` that the entry point does not handle itself — one raised while torch or
transformers is being imported, say — prints ``interrupted`` and exits with 130, the shell's code
for SIGINT; further Ctrl-C presses are ignored while it exits, so no traceback can follow.
(Entry points that catch ``KeyboardInterrupt`` themselves return 130 after their own one line.)
Output files are written inside :func:`interrupts_deferred`: a Ctrl-C then waits until they are whole.
A Python warning is one line, ``warning: MESSAGE (Category)``, without the source line Python would print.
A Ctrl-C that Python itself would drop (one that lands in a weakref callback, as importlib's module
locks run during the start-up imports) is delivered again: see :func:`dropped_interrupts_redelivered`.

>>> exit_status(None), exit_status(3), exit_status({"written": "x.md"})
(0, 3, 0)
>>> one_line_warning(UserWarning("2 rows dropped"), UserWarning, "runners/x.py", 12)
'warning: 2 rows dropped (UserWarning)\\n'
"""

from __future__ import annotations

import importlib
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

EXIT_INTERRUPTED = 130

EntryPoint = Callable[[], object]


def exit_status(returned: object) -> int:
    """The exit status for what an entry point returned: an int as it is, anything else 0."""
    return returned if isinstance(returned, int) and not isinstance(returned, bool) else 0


def run_command(entry: str | EntryPoint) -> NoReturn:
    """Run `entry` (a module with a ``main()``, named, or the callable itself) and exit with its status."""
    warnings.formatwarning = one_line_warning
    try:
        with dropped_interrupts_redelivered():
            main = importlib.import_module(entry).main if isinstance(entry, str) else entry
            status = exit_status(main())
    except KeyboardInterrupt:
        status = interrupted()
    finally:
        end_process_group()
    if status == EXIT_INTERRUPTED:  # exiting anyway: a further Ctrl-C must not print a traceback
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(status)


def one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                     line: str | None = None) -> str:
    """A warning as a runner prints it: one line, its category in brackets (`warnings.formatwarning`)."""
    return f"warning: {' '.join(str(message).split())} ({category.__name__})\n"


def end_process_group() -> None:
    """Destroy this process's default process group, if a run started one (torchrun); else nothing.

    Looks torch.distributed up among the imported modules: a runner that never imported it pays nothing.
    """
    distributed = sys.modules.get("torch.distributed")
    if distributed is not None and distributed.is_available() and distributed.is_initialized():
        try:
            distributed.destroy_process_group()
        except Exception as error:  # the run's own outcome (files, exit status) must stand: one line, no traceback
            print(f"warning: the process group could not be ended cleanly: {error}", file=sys.stderr, flush=True)


def interrupted(message: str | None = "interrupted") -> int:
    """Say `message` (if any) on one line of stderr; the exit status of an interrupted command, 130."""
    if message:
        print(message, file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ctrl-C inside the block takes effect when the block ends, so the files it writes are whole.

    >>> import signal
    >>> try:
    ...     with interrupts_deferred():
    ...         signal.raise_signal(signal.SIGINT)
    ...         print("the block ran to its end")
    ... except KeyboardInterrupt:
    ...     print("then the interrupt")
    the block ran to its end
    then the interrupt
    """
    received: list[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda number, frame: received.append(number))
    except ValueError:  # not the main thread: signals go to the main thread anyway
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            signal.raise_signal(signal.SIGINT)  # now handled as it would have been


# How long a dropped Ctrl-C waits before it is sent again: the callback that dropped it has long returned.
REDELIVERY_DELAY_S = 0.01


@contextmanager
def dropped_interrupts_redelivered() -> Iterator[None]:
    """Inside the block, a ``KeyboardInterrupt`` that Python drops is raised again in the main thread.

    An exception raised in a weakref callback or a ``__del__`` cannot propagate: Python prints
    "Exception ignored in ..." and goes on. A Ctrl-C that lands there (importlib runs such a callback
    for every module lock, so one can land there while torch is imported) was lost, and the command
    went on working. Here it is not printed; SIGINT is sent to the main thread again a moment later,
    when the callback has returned. One still owed when the block ends is raised as it ends.

    >>> import time, weakref
    >>> class Thing: ...
    >>> def callback(reference): raise KeyboardInterrupt  # as if Ctrl-C came while it ran
    >>> try:
    ...     with dropped_interrupts_redelivered():
    ...         thing = Thing(); reference = weakref.ref(thing, callback)
    ...         del thing  # Python drops the callback's KeyboardInterrupt ...
    ...         time.sleep(10)  # ... and it comes again here
    ... except KeyboardInterrupt:
    ...     print("interrupted")
    interrupted
    """
    lock = threading.Lock()
    owed: list[threading.Timer] = []  # redeliveries not yet sent
    previous_hook = sys.unraisablehook

    def send(timer: threading.Timer) -> None:
        with lock:
            if timer not in owed:  # the block has ended: it is raised there instead
                return
            owed.remove(timer)
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    def hook(unraisable: object) -> None:
        if not isinstance(getattr(unraisable, "exc_value", None), KeyboardInterrupt):
            previous_hook(unraisable)
            return
        timer = threading.Timer(REDELIVERY_DELAY_S, lambda: send(timer))
        timer.daemon = True
        with lock:
            owed.append(timer)
        timer.start()

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        with lock:
            unsent = list(owed)
            owed.clear()
        for timer in unsent:
            timer.cancel()
    if unsent:
        raise KeyboardInterrupt
