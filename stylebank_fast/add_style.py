"""`python -m stylebank_fast.add_style`: starts the add style tool (stylebank_fast/cli/add_style.py)."""

from .cli.add_style import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
