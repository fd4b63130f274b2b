"""HTTP requests for the login tests: no redirects followed, cookies and headers as given,
every answer (2xx or not) returned as a :class:`Reply`."""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.request
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from powerbus.bus.access.store import AccessStore
from powerbus.bus.http_auth import COOKIE, Role, UserStore
from powerbus.bus.kernel.database import create_engine

ACTION = {"X-Powerbus-Action": "1"}
PASSWORDS = {
    "ada": "admin password 1",
    "otto": "operator password 2",
    "vera": "viewer password 3",
}
ROLES = {"ada": Role.ADMIN, "otto": Role.OPERATOR, "vera": Role.VIEWER}


@dataclasses.dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def cookie(self) -> SimpleCookie:
        jar: SimpleCookie = SimpleCookie()
        jar.load(self.headers.get("set-cookie", ""))
        return jar


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def call(
    http: str,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: Any = None,
    session: str = "",
    token: str = "",
) -> Reply:
    """``method path`` at ``http``; ``body`` is sent as JSON, ``session`` as the cookie."""
    sent = dict(headers or {})
    if session:
        sent["Cookie"] = f"{COOKIE}={session}"
    if token:
        sent["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent.setdefault("Content-Type", "application/json")
    elif method not in ("GET", "HEAD"):
        data = b""
    request = urllib.request.Request(f"http://{http}{path}", method=method, data=data, headers=sent)
    try:
        with _OPENER.open(request, timeout=10) as response:
            return Reply(
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                response.read(),
            )
    except urllib.error.HTTPError as error:
        return Reply(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


def login(http: str, name: str, password: str | None = None) -> str:
    """Log ``name`` in; the session id of the cookie."""
    reply = call(
        http,
        "POST",
        "/login",
        headers=ACTION,
        body={"name": name, "password": password or PASSWORDS[name]},
    )
    assert reply.status == 200, reply
    return reply.cookie[COOKIE].value


def seed_users(db_path: Path) -> dict[str, str]:
    """ada (admin), otto (operator) and vera (viewer) in a fresh database at ``db_path``;
    an API token of each, by name."""
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        access = AccessStore(engine)
        access.migrate()
        store = UserStore(engine, audit=access.audit)  # audited as the CLI does it
        store.migrate()
        for name, role in ROLES.items():
            store.add(name, role, PASSWORDS[name])
        return {name: store.issue_token(name, label="tests") for name in ROLES}
    finally:
        engine.dispose()
