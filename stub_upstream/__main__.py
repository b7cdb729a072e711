"""``python -m stub_upstream``."""

import sys

from stub_upstream.cli import main

if __name__ == "__main__":
    sys.exit(main())
