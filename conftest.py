"""Settings every collected test and doctest shares (tests/conftest.py has the fixtures).

A job started in the background by a non-interactive shell (`python3 -m pytest &` in a script)
begins with SIGINT ignored, and every process it starts inherits that, so Ctrl-C could not reach
the processes whose Ctrl-C handling the tests check (tests/test_startup.py, tests/test_resume.py,
the doctest of runners/command.py). Python's own handler is put back: the tests then see what a
terminal's Ctrl-C does, however the suite was launched. A handler (unlike "ignore") is not
inherited across exec, so the processes the tests start get the default too.
"""

import signal

if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
