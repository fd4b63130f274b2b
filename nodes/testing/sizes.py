"""Test sizes: the normal one in ``make test``, a heavy one under ``make soak``
(``POWERBUS_SOAK=1``), so the fast suite proves each property at the smallest size that
shows it and the soak runs the same tests where rare interleavings have room to happen.

>>> sized(150, 3000, env={})
150
>>> sized(150, 3000, env={"POWERBUS_SOAK": "1"})
3000
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["sized", "soaking"]


def soaking(env: Mapping[str, str] | None = None) -> bool:
    """True under ``make soak`` (``POWERBUS_SOAK`` set and not ``0``)."""
    return (os.environ if env is None else env).get("POWERBUS_SOAK", "") not in ("", "0")


def sized(normal: int, soak: int, *, env: Mapping[str, str] | None = None) -> int:
    """``normal`` in ``make test``, ``soak`` under ``make soak``."""
    return soak if soaking(env) else normal
