"""Entry point for ``python -m nbship``."""

from __future__ import annotations

from nbship.cli import main

if __name__ == "__main__":
    main()
