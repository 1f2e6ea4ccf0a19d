"""``python -m runners.finetune`` (and ``torchrun -m runners.finetune``): see `runners.finetune.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
