"""``python -m runners.finetune`` with the GPU's memory capped, to see the runner's out-of-memory message.

The cap (``torch.cuda.set_per_process_memory_fraction``) makes a batch that would fit the whole card
too large for the process, so the message shows without a model too big to build::

    python benchmarks/gpu/oom_probe.py 0.002 --batch-size 2000 --output-dir /tmp/oom

The first argument is the fraction of the card's memory the process may allocate; the rest are the
runner's own arguments. Exits with the runner's status (3 is out of GPU memory).
"""

from __future__ import annotations

import sys

import torch


def main(argv: list[str]) -> int:
    fraction, runner_arguments = float(argv[0]), argv[1:]
    if not torch.cuda.is_available():
        print("error: needs a CUDA device", file=sys.stderr)
        return 2
    torch.cuda.set_per_process_memory_fraction(fraction)
    total = torch.cuda.get_device_properties(0).total_memory
    print(f"memory cap: {fraction} of {total / 2**30:.1f} GiB = {fraction * total / 2**20:.0f} MiB", flush=True)
    from runners.finetune.cli import main as finetune_main

    return finetune_main(runner_arguments)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
