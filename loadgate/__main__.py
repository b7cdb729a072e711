"""``python -m loadgate``: the same entry point as the ``loadgate`` console script."""

from __future__ import annotations

from loadgate.cli import main

if __name__ == "__main__":
    main()
