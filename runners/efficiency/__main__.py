"""``python -m runners.efficiency``: see the package docstring."""

from . import main

if __name__ == "__main__":
    main()
