"""`python -m stylebank_fast.export`: starts the export tool (stylebank_fast/cli/export.py)."""

from .cli.export import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
