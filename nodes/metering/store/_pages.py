"""Page tokens of reading queries: the last key of a page, opaque to callers.

>>> from datetime import datetime, timezone
>>> key = ("M1", 3, datetime(2026, 12, 1, tzinfo=timezone.utc))
>>> decode_token(encode_token(key)) == key
True
"""

from __future__ import annotations

import base64
import json
from datetime import datetime

from powerbus.bus.kernel.errors import InvalidArgument

__all__ = ["decode_token", "encode_token"]

Key = tuple[str, int, datetime]


def encode_token(key: Key) -> str:
    """The token that continues after ``key``."""
    text = json.dumps([key[0], key[1], key[2].isoformat()])
    return base64.urlsafe_b64encode(text.encode()).decode()


def decode_token(token: str) -> Key:
    """The key a token continues after; a token not from :func:`encode_token` is refused."""
    try:
        meter_id, type_id, at = json.loads(base64.urlsafe_b64decode(token.encode()))
        key = (str(meter_id), int(type_id), datetime.fromisoformat(at))
    except (ValueError, TypeError) as exc:
        raise InvalidArgument("page_token", f"not a token this store issued ({exc})") from None
    if key[2].tzinfo is None:
        raise InvalidArgument("page_token", "not a token this store issued")
    return key
