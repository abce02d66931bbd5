"""User-facing errors: a CLI prints their message and exits with code 2 (no traceback)."""

from __future__ import annotations


class StyleBankError(Exception):
    """A problem the user can fix (a path, a file, an option): the message says what and how."""


class CheckpointError(StyleBankError, ValueError):
    """A model or style file that is missing, corrupt, truncated or of the wrong kind."""


class DataError(StyleBankError, ValueError):
    """Training images or style images that cannot be found or read."""


class WeightsError(StyleBankError, FileNotFoundError):
    """Pretrained loss-network weights that are missing or do not fit the network."""


class ExtensionError(StyleBankError, RuntimeError):
    """The compiled operator library is missing or does not load (the message says how to fix)."""


class OtherRankFailed(StyleBankError):
    """This rank of a multi-process run stops because another rank failed; that rank says why.
    An empty message: nothing more to print. The CLI exits with `exit_code`."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
