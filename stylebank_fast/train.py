"""`python -m stylebank_fast.train`: starts the train tool (stylebank_fast/cli/train.py)."""

from .cli.train import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
