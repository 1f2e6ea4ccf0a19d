"""Time: every row's step timed round-robin, and `surgery.apply` on a T5-large config.

    time_interleaved(actions, ...)   `repeats` rounds × `steps` calls per action, every round
      └─ time_once(action)           starting one action later; both clocks (wall, CPU time)
    time_large_apply(recipes, ...)   median seconds of surgery.apply on a fresh T5-large model
    resolve_clock(args)              the clock the tables use: CPU time on CPU, CUDA events on CUDA
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from transformers import T5ForConditionalGeneration

import surgery

from .rows import describe_error, synchronize, t5_config

CLOCKS = ("wall", "cpu", "cuda")  # "cuda" (CUDA events on the current stream) only on a CUDA device


def clocks_on(device: torch.device) -> tuple[str, ...]:
    """The clocks `time_once` reads on `device`.

    >>> clocks_on(torch.device("cpu"))
    ('wall', 'cpu')
    >>> clocks_on(torch.device("cuda"))
    ('wall', 'cpu', 'cuda')
    """
    return CLOCKS if device.type == "cuda" else CLOCKS[:2]


def time_once(action: Callable[[], None], device: torch.device) -> dict[str, float]:
    """Seconds `action` took: by the wall clock, in CPU time of this process (all its threads) and,
    on CUDA, between two CUDA events recorded on the current stream before and after it."""
    synchronize(device)
    events = [torch.cuda.Event(enable_timing=True) for _ in range(2)] if device.type == "cuda" else []
    wall, cpu = time.perf_counter(), time.process_time()
    if events:
        events[0].record()
    action()
    if events:
        events[1].record()
    synchronize(device)
    seconds = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
    if events:
        seconds["cuda"] = events[0].elapsed_time(events[1]) / 1000  # elapsed_time is in milliseconds
    return seconds


def rotated(items: list, shift: int) -> list:
    """`items` starting at position `shift` (mod its length), so no row always runs first.

    >>> rotated(["a", "b", "c"], 4)
    ['b', 'c', 'a']
    """
    if not items:
        return []
    shift %= len(items)
    return items[shift:] + items[:shift]


def time_interleaved(actions: dict[str, Callable[[], None]], device: torch.device, repeats: int, steps: int,
                     on_round: Callable[[int], None] | None = None) -> dict[str, dict[str, list[float]]]:
    """Seconds per call of every action, {clock: {action: samples}}: `repeats` round-robin rounds
    of `steps` calls each, every round starting one action later."""
    samples: dict[str, dict[str, list[float]]] = {clock: {name: [] for name in actions} for clock in clocks_on(device)}
    names = list(actions)
    for round_index in range(repeats):
        for name in rotated(names, round_index):
            for _ in range(steps):
                for clock, seconds in time_once(actions[name], device).items():
                    samples[clock][name].append(seconds)
        if on_round is not None:
            on_round(round_index)
    return samples



ApplyTimes = dict[str, dict[str, float] | str]  # recipe → {clock: median seconds}, or why it failed


def time_large_apply(recipes: list[str], device_kind: str, repeats: int, config_name: str = "t5-large") -> ApplyTimes:
    """Median seconds of `surgery.apply(model, recipe)` on a fresh T5-large model, per recipe and clock.

    The model is built outside the timed region: on the meta device (no memory, no init cost;
    the engine traces symbolically, so apply does the same work) or for real on the CPU.
    """
    config = t5_config(config_name)
    results: ApplyTimes = {}
    for recipe in recipes:
        samples: dict[str, list[float]] = {clock: [] for clock in clocks_on(torch.device("cpu"))}
        for _ in range(repeats):
            with torch.device(device_kind):
                model = T5ForConditionalGeneration(config)
            model.tie_weights()  # transformers 5.0 does not tie a model built on the meta device
            try:
                for clock, seconds in time_once(lambda: surgery.apply(model, recipe), torch.device("cpu")).items():
                    samples[clock].append(seconds)
            except Exception as error:
                results[recipe] = describe_error(error)
                break
            finally:
                del model
        if recipe not in results:
            results[recipe] = {clock: statistics.median(values) for clock, values in samples.items()}
    return results


def resolve_clock(args: argparse.Namespace) -> str:
    """The clock the table's times use: CPU time of the process on CPU, CUDA events on CUDA.

    >>> resolve_clock(argparse.Namespace(clock="auto", device="cuda"))
    'cuda'
    >>> resolve_clock(argparse.Namespace(clock="wall", device="cuda"))
    'wall'
    """
    if args.clock != "auto":
        return args.clock
    return "cuda" if args.device == "cuda" else "cpu"
