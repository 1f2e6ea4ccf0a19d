"""Bag-of-words baselines of world 2's tasks: train split -> test split, as for world 1.

    python -m runners.embedded.world2.baselines

The same models as ``python -m runners.embedded.baselines`` (logistic regression, ridge for stsb,
on binary word and word-pair features of each field). The words that decide a test label never
occur in the training split, so these should sit near chance.
"""

from __future__ import annotations

import argparse
import sys

from runners.embedded.baselines import table


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m runners.embedded.world2.baselines",
                            description=__doc__.split("\n\n")[0]).parse_args(argv)
    from runners.embedded.world2.tasks import WORLD2_TASKS

    print(table(list(WORLD2_TASKS.values())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
