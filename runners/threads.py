"""How many CPU threads a run should use: as many as there are cores free right now, up to a cap.

An OpenMP thread pool runs in lock-step: when one of its threads shares a core with another
process, every step waits for it. On a 2-core machine where something else keeps one core busy,
two threads made the main finetune job 2–7× slower than one thread (issue 25: 1:48–7:50 instead of
about a minute). So the number of threads is the number of cores that are idle now, measured
over a quarter of a second (Linux: ``/proc/stat``; elsewhere the 1-minute load average), capped
at what the model can use, and at least one.

>>> threads_for(free_cores=2.0, cap=2), threads_for(free_cores=1.3, cap=2), threads_for(free_cores=0.2, cap=2)
(2, 1, 1)
>>> threads_for(free_cores=7.9, cap=4)
4
"""

from __future__ import annotations

import os
import time
from pathlib import Path

SAMPLE_SECONDS = 0.25
# A core counts as free when at most this share of it is in use by others: a thread on a core
# that is a quarter busy already stalls the pool noticeably.
BUSY_SLACK = 0.25


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _cpu_times(stat: Path) -> tuple[int, int]:
    """(busy, total) jiffies of all cores together, from the first line of /proc/stat."""
    fields = [int(value) for value in stat.read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    return total - idle, total


def free_cores(sample_seconds: float = SAMPLE_SECONDS, stat: Path = Path("/proc/stat")) -> float:
    """Cores idle now: measured over `sample_seconds` (Linux), else from the 1-minute load average."""
    cores = usable_cores()
    if stat.is_file():
        busy_before, total_before = _cpu_times(stat)
        time.sleep(sample_seconds)
        busy_after, total_after = _cpu_times(stat)
        all_cores = os.cpu_count() or cores
        busy = all_cores * (busy_after - busy_before) / max(1, total_after - total_before)
        return max(0.0, min(cores, all_cores - busy))
    if hasattr(os, "getloadavg"):
        return max(0.0, cores - os.getloadavg()[0])
    return float(cores)


def threads_for(free_cores: float, cap: int) -> int:
    """Threads for `free_cores` idle cores: one per core that is (almost) wholly free, 1 ≤ threads ≤ cap."""
    return max(1, min(cap, int(free_cores + BUSY_SLACK)))


def choose_threads(cap: int) -> int:
    """The intra-op threads for a run now: the cores free at this moment, up to `cap`."""
    return threads_for(free_cores(), cap)
