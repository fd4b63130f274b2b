"""Opaque page tokens: an offset the client cannot forge into something else unnoticed.

>>> decode_token(encode_token(40, "search"), "search")
40
>>> decode_token("", "search")
0
"""

from __future__ import annotations

import base64
import binascii

from powerbus.bus.kernel.errors import InvalidArgument

__all__ = ["DEFAULT_PAGE", "MAX_PAGE", "decode_token", "encode_token", "page_size"]

DEFAULT_PAGE = 50
MAX_PAGE = 500


def page_size(requested: int) -> int:
    """The page size to use: the default for 0, capped at :data:`MAX_PAGE`."""
    if requested < 0:
        raise InvalidArgument("page.page_size", f"must not be negative, got {requested}")
    return min(requested or DEFAULT_PAGE, MAX_PAGE)


def encode_token(offset: int, scope: str) -> str:
    """A token for the page starting at ``offset`` of a listing named ``scope``."""
    return base64.urlsafe_b64encode(f"crm1:{scope}:{offset}".encode()).decode()


def decode_token(token: str, scope: str) -> int:
    """The offset in ``token``; :class:`InvalidArgument` for one this listing did not issue."""
    if not token:
        return 0
    try:
        version, token_scope, offset = base64.urlsafe_b64decode(token).decode().split(":")
        value = int(offset)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgument("page.page_token", "not a token this method issued") from None
    if version != "crm1" or token_scope != scope or value < 0:
        raise InvalidArgument("page.page_token", "not a token this method issued")
    return value
