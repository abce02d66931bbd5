"""python -m stylebank_fast.serve: the web app and HTTP API (see cli/serve.py)."""

from ..cli.serve import main

if __name__ == "__main__":
    raise SystemExit(main())
