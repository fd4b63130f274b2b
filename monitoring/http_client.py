"""Reading a bus's monitoring API over HTTP, for the CLI: one place that maps failures.

>>> fetch_json("127.0.0.1:9", "/api/overview", timeout=0.5)
Traceback (most recent call last):
powerbus.bus.kernel.errors.Unavailable: cannot reach the bus's HTTP port at 127.0.0.1:9: ...
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPException
from typing import Any

from powerbus.bus.kernel.errors import InvalidArgument, NotFound, PermissionDenied, Unavailable

__all__ = ["TOKEN_ENV", "fetch_json", "fetch_text", "post_json"]

TOKEN_ENV = "POWERBUS_HTTP_TOKEN"
"""An API token (``powerbus users token NAME``) the CLI sends as ``Authorization: Bearer``
once the bus's HTTP port asks for a login; an environment variable, not a flag, so it is
not shown in ``ps`` and every command has it at once."""


def fetch_text(http: str, path: str, *, timeout: float, method: str = "GET") -> str:
    """``method`` (GET) ``path`` at the bus's HTTP address ``http`` (HOST:PORT) within
    ``timeout`` s."""
    url = f"http://{http}{path}"
    # The header the bus's CSRF guard asks of every POST (see bus/http_api.py).
    headers = {"X-Powerbus-Action": "1"} if method == "POST" else {}
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        url, method=method, data=b"" if method == "POST" else None, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return str(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        body = error.read().decode("utf-8", "replace")
        try:
            message = json.loads(body).get("error") or body
        except (ValueError, AttributeError):
            message = body
        if method == "POST" and error.code in (400, 404):  # an action refused: say why
            field, _, problem = str(message).partition(": ")
            if error.code == 404:
                raise NotFound(str(message)) from None
            raise InvalidArgument(field, problem or field) from None
        if error.code == 401:
            hint = "" if token else f"; set {TOKEN_ENV} to an API token (powerbus users token)"
            raise PermissionDenied(f"{path}: {message}{hint}") from None
        if error.code == 403:
            raise PermissionDenied(f"{path}: {message}") from None
        if error.code == 404:
            raise NotFound(f"{path}: {message}") from None
        if error.code == 400:
            raise InvalidArgument("query", str(message)) from None
        raise Unavailable(f"{url}: HTTP {error.code}: {message}") from None
    except HTTPException:
        # An HTTP/2-only server (the bus's gRPC port) answers HTTP/1.1 with binary frames.
        raise Unavailable(
            f"{http} does not answer HTTP/1.1 (the bus's gRPC port?): give --http the bus's"
            " HTTP port"
        ) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise Unavailable(f"cannot reach the bus's HTTP port at {http}: {reason}") from None


def fetch_json(http: str, path: str, *, timeout: float, **query: str) -> Any:
    """GET ``path`` (with ``query``) and parse the JSON answer; a 404 whose body is JSON
    (``/api/impact`` of an unknown node) is returned, not raised."""
    if query:
        path = f"{path}?{urllib.parse.urlencode({k: v for k, v in query.items() if v})}"
    try:
        return json.loads(fetch_text(http, path, timeout=timeout))
    except ValueError as error:
        raise Unavailable(f"{http}{path}: not JSON: {error}") from None


def post_json(http: str, path: str, *, timeout: float, **query: str) -> Any:
    """POST to ``path`` (with ``query``), no body; the JSON answer."""
    if query:
        path = f"{path}?{urllib.parse.urlencode(query)}"
    try:
        return json.loads(fetch_text(http, path, timeout=timeout, method="POST"))
    except ValueError as error:
        raise Unavailable(f"{http}{path}: not JSON: {error}") from None
