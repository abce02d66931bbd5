"""`python -m stylebank_fast.stylize`: starts the stylize tool (stylebank_fast/cli/stylize.py)."""

from .cli.stylize import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
