"""CPU threads chosen for the cores free now (`runners.threads`), and --threads / OMP_NUM_THREADS first.

The busy-machine timings are in benchmarks/bench_busy_machine.py; here the arithmetic is checked
on a /proc/stat written by the test, and the runner's choice with the measurement replaced.
"""

from __future__ import annotations

import os

import pytest
import torch

from runners import threads
from runners.embedded.world2 import MODEL_DIR as WORLD2_MODEL_DIR
from runners.finetune.run import set_cpu_threads
from runners.finetune.protocol import SMALL_MODEL_CPU_THREADS


def _stat_line(user: int, idle: int, system: int = 0, iowait: int = 0) -> str:
    # cpu  user nice system idle iowait irq softirq steal guest guest_nice
    return f"cpu  {user} 0 {system} {idle} {iowait} 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\n"


@pytest.mark.parametrize("busy_jiffies, idle_jiffies, expected_free", [
    (0, 200, 2.0),     # nothing ran: both cores free
    (100, 100, 1.0),   # one core's worth busy (of 2 cores × 100 jiffies)
    (150, 50, 0.5),
    (200, 0, 0.0),
])
def test_free_cores_is_the_idle_share_of_the_sample_times_the_cores(monkeypatch, tmp_path, busy_jiffies,
                                                                     idle_jiffies, expected_free):
    stat = tmp_path / "stat"
    stat.write_text(_stat_line(user=1000, idle=5000, system=300, iowait=20))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    # The second sample: user time and system time split the busy jiffies, idle the rest.
    second = _stat_line(user=1000 + busy_jiffies // 2, idle=5000 + idle_jiffies, system=300 + busy_jiffies - busy_jiffies // 2,
                        iowait=20)
    monkeypatch.setattr(threads.time, "sleep", lambda seconds: stat.write_text(second))
    assert threads.free_cores(stat=stat) == pytest.approx(expected_free)


def test_free_cores_is_capped_by_the_affinity_mask(monkeypatch, tmp_path):
    stat = tmp_path / "stat"
    stat.write_text(_stat_line(user=0, idle=0))
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)  # e.g. taskset -c 0,1 on an idle 8-core machine
    monkeypatch.setattr(threads.time, "sleep", lambda seconds: stat.write_text(_stat_line(user=0, idle=800)))
    assert threads.free_cores(stat=stat) == 2.0


def test_without_proc_stat_the_load_average_decides(monkeypatch, tmp_path):
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.5, 1.0, 1.0))
    assert threads.free_cores(stat=tmp_path / "no-such-stat") == pytest.approx(0.5)


@pytest.mark.parametrize("free, expected", [(2.0, 2), (1.8, 2), (1.6, 1), (1.0, 1), (0.0, 1)])
@pytest.mark.parametrize("model", [None, str(WORLD2_MODEL_DIR)])  # world 1's embedded T5, world 2's
def test_the_embedded_models_get_one_thread_per_free_core(monkeypatch, free, expected, model):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "free_cores", lambda: free)
    set_cpu_threads({"model": model}, torch.device("cpu"))
    assert torch.get_num_threads() == min(expected, SMALL_MODEL_CPU_THREADS)


def test_another_model_keeps_torchs_threads(monkeypatch, tmp_path):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "free_cores", lambda: pytest.fail("measured for a model of the user's"))
    torch.set_num_threads(3)
    set_cpu_threads({"model": str(tmp_path / "my-t5")}, torch.device("cpu"))
    assert torch.get_num_threads() == 3


def test_threads_and_omp_num_threads_come_first(monkeypatch):
    monkeypatch.setattr(threads, "free_cores", lambda: pytest.fail("measured although the user chose"))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    set_cpu_threads({"model": None, "threads": 2}, torch.device("cpu"))
    assert torch.get_num_threads() == 2
    set_cpu_threads({"model": None, "init_config": ["d_model=8"]}, torch.device("cpu"))
    assert torch.get_num_threads() == 1  # the tiny models: one thread, not measured
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(3)
    set_cpu_threads({"model": None}, torch.device("cpu"))
    assert torch.get_num_threads() == 3  # left to OMP_NUM_THREADS (as torch read it at start-up)
