"""``python -m modic.teaching [DEST] [--overwrite]``: write the shipped teaching cases."""

from __future__ import annotations

import sys

from .shipped import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
