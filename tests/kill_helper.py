"""Run `runners.finetune` and SIGKILL it at a chosen point: the n-th call of one file or training operation.

    python tests/kill_helper.py EVENT[DESTINATION]:N[:after] -- RUNNER ARGUMENTS...
    python tests/kill_helper.py --serve      # one run per line of stdin: SPEC DELAY ARGUMENTS-AS-JSON

With --serve the helper imports torch and the runner once, then forks a fresh process per run
(the runs are real processes, killed by a real SIGKILL, without paying the imports each time)
and answers each line with the run's exit status (-9 when killed). DELAY > 0: the server also
kills the run that many seconds after it started, wherever it is.

EVENT is one of rename (os.rename / os.replace, which Path.rename and Path.replace call), torch.save, save_file (the
adapter's safetensors write), log (a log.jsonl record), step (an optimizer step), rmtree; the
optional [DESTINATION] counts only renames onto a path with that name (``rename[last]:2`` is
the second time a folder is renamed *to* ``last``: the moment between save_checkpoint's two
renames). The process kills itself before the N-th call, or right after it with ``:after``.
``none`` runs to the end. Used by tests/test_kill_anywhere.py.
"""

from __future__ import annotations

import os
import re
import signal
import sys


def install(spec: str) -> None:
    if spec == "none":
        return
    match = re.fullmatch(r"([a-z_.]+)(?:\[([^\]]+)\])?:(\d+)(:after)?", spec)
    if match is None:
        raise SystemExit(f"bad kill spec {spec!r}")
    event, destination, count, after = match.group(1), match.group(2), int(match.group(3)), bool(match.group(4))
    calls = {"n": 0}

    def wrap(function, name_of_destination=None):
        def wrapped(*args, **kwargs):
            counts = destination is None or (name_of_destination is not None
                                             and os.path.basename(str(name_of_destination(args))) == destination)
            if counts:
                calls["n"] += 1
                if calls["n"] == count and not after:
                    os.kill(os.getpid(), signal.SIGKILL)
            result = function(*args, **kwargs)
            if counts and calls["n"] == count and after:
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        return wrapped

    if event == "rename":  # Path.rename and Path.replace call these
        os.rename = wrap(os.rename, lambda args: args[1])
        os.replace = wrap(os.replace, lambda args: args[1])
    elif event == "torch.save":
        import torch
        import runners.finetune.state as state

        state.torch.save = wrap(torch.save)
    elif event == "save_file":
        import surgery.checkpoint as checkpoint

        checkpoint.save_file = wrap(checkpoint.save_file)
    elif event == "log":
        from runners.finetune.jsonl_log import JsonlLog

        JsonlLog.write = wrap(JsonlLog.write)
    elif event == "step":
        import torch

        torch.optim.AdamW.step = wrap(torch.optim.AdamW.step)
    elif event == "rmtree":
        import shutil

        shutil.rmtree = wrap(shutil.rmtree)
    else:
        raise SystemExit(f"unknown event {event!r}")


def serve() -> None:
    import json
    import time

    import runners.finetune.run  # noqa: F401 — everything a run imports, imported before forking
    import runners.finetune.training  # noqa: F401
    import methods  # noqa: F401
    from runners.finetune.cli import main

    for line in sys.stdin:
        spec, delay, argv = line.split(" ", 2)
        pid = os.fork()
        if pid == 0:  # the run; its stdout is not the server's answers
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            try:
                install(spec)
                code = main(json.loads(argv))
            except BaseException:  # noqa: BLE001 — report, then leave without running the server's code
                import traceback

                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        started, status = time.monotonic(), None
        while status is None:
            finished, raw = os.waitpid(pid, os.WNOHANG)
            if finished:
                status = -os.WTERMSIG(raw) if os.WIFSIGNALED(raw) else os.WEXITSTATUS(raw)
            elif float(delay) > 0 and time.monotonic() - started > float(delay):
                os.kill(pid, signal.SIGKILL)
                _, raw = os.waitpid(pid, 0)
                status = -os.WTERMSIG(raw) if os.WIFSIGNALED(raw) else os.WEXITSTATUS(raw)
            else:
                time.sleep(0.01)
        print(status, flush=True)


if __name__ == "__main__":
    sys.path.insert(0, os.getcwd())
    if sys.argv[1] == "--serve":
        serve()
    else:
        separator = sys.argv.index("--")
        install(sys.argv[1])
        from runners.finetune.cli import main

        sys.exit(main(sys.argv[separator + 1:]))
