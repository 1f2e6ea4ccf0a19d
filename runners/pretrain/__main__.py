"""``python -m runners.pretrain`` (and ``torchrun -m runners.pretrain``): see `runners.pretrain.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
