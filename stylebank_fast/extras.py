"""Optional extras (`pip install 'stylebank_fast[EXTRA]'`): their modules are imported only
where a feature needs them, and a missing one is named in a one-line message."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import StyleBankError

__all__ = ["require_extra"]


def require_extra(purpose: str, extra: str, modules: dict[str, str]) -> list[ModuleType]:
    """The modules (named as imported, mapped to their pip package) that `purpose` ("video
    needs PyAV") takes from the extra `extra`, or a StyleBankError naming the extra."""
    try:
        return [importlib.import_module(module) for module in modules]
    except ImportError:
        raise StyleBankError(
            f"{purpose}: pip install 'stylebank_fast[{extra}]' (or pip install "
            f"{' '.join(modules.values())})"
        ) from None
