"""Logins on the bus's HTTP port (issue 13, item 6), against a real bus on loopback.

Once users exist, ``/api`` without a login is 401 and the dashboard redirects to the login
page; a wrong password is refused and attempts are rate-limited per peer; a viewer cannot
act (403 naming role and action) while an operator can, and the record names the logged-in
user, not a self-asserted ``?by=``; API tokens work without the CSRF header, a browser's
session does not; ``/metrics`` and ``/healthz`` stay open unless ``metrics_auth = "token"``.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest
from http_auth_support import ACTION, PASSWORDS, call, login, seed_users

from powerbus.bus.http_auth import COOKIE

SILENCE = "/api/alerts/silence?rule=node-down&subject=echo-9&for=10m&by=mallory"


@pytest.fixture
def secured(bus_factory, tmp_path: Path):
    """A bus whose database holds ada (admin), otto (operator) and vera (viewer)."""
    db = tmp_path / "bus.db"
    tokens = seed_users(db)
    bus = bus_factory(db=f"sqlite:///{db}", env={"POWERBUS_LOGIN_BURST": "8"})
    return bus, tokens


def test_without_a_login_api_is_401_and_the_dashboard_redirects(secured):
    bus, _tokens = secured
    for path in ("/api/overview", "/api/nodes", "/api/alerts", "/api/session", "/api/users"):
        reply = call(bus.http, "GET", path)
        assert reply.status == 401, (path, reply)
        assert "authentication required" in reply.json()["error"]
    reply = call(bus.http, "GET", "/")
    assert reply.status == 303
    assert reply.headers["location"] == "/login?next=%2F"
    assert call(bus.http, "POST", SILENCE, headers=ACTION).status == 401
    # Open: what logging in needs, and the probes (metrics_auth is "open" by default).
    page = call(bus.http, "GET", "/login")
    assert page.status == 200 and b'id="login-form"' in page.body
    for path in ("/static/login.js", "/static/app.css", "/metrics", "/healthz"):
        assert call(bus.http, "GET", path).status == 200, path


def test_a_wrong_password_is_refused_and_a_right_one_gives_a_strict_cookie(secured):
    bus, _tokens = secured
    for name, password in (("vera", "not her password"), ("nobody", PASSWORDS["vera"])):
        reply = call(
            bus.http, "POST", "/login", headers=ACTION, body={"name": name, "password": password}
        )
        assert reply.status == 401
        assert reply.json() == {"error": "wrong user name or password"}
        assert "set-cookie" not in reply.headers
    reply = call(
        bus.http,
        "POST",
        "/login",
        headers=ACTION,
        body={"name": "vera", "password": PASSWORDS["vera"], "next": "//evil.example/"},
    )
    assert reply.status == 200
    assert reply.json() == {"user": "vera", "role": "viewer", "next": "/"}  # no open redirect
    morsel = reply.cookie[COOKIE]
    assert morsel["httponly"] and morsel["samesite"] == "strict" and morsel["path"] == "/"
    assert int(morsel["max-age"]) == 12 * 3600
    session = morsel.value
    me = call(bus.http, "GET", "/api/session", session=session)
    assert me.json() == {"user": "vera", "role": "viewer", "credential": "session"}
    assert call(bus.http, "GET", "/", session=session).status == 200

    # Logged out, the same cookie is worth nothing.
    out = call(bus.http, "POST", "/logout", headers=ACTION, session=session)
    assert out.status == 200 and out.json() == {"logged_out": True}
    assert call(bus.http, "GET", "/api/overview", session=session).status == 401


def test_login_attempts_are_limited_per_peer(secured):
    bus, _tokens = secured
    wrong = {"name": "ada", "password": "guess number n"}
    codes = [
        # A client posing as many hosts is still one peer: no proxy is trusted by default.
        call(
            bus.http,
            "POST",
            "/login",
            headers={**ACTION, "X-Forwarded-For": f"10.0.0.{i}"},
            body=wrong,
        ).status
        for i in range(8)
    ]
    assert codes == [401] * 8
    refused = call(
        bus.http,
        "POST",
        "/login",
        headers=ACTION,
        body={"name": "ada", "password": PASSWORDS["ada"]},
    )
    assert refused.status == 429, "the right password too, once the peer is over the limit"
    assert "login attempts from 127.0.0.1" in refused.json()["error"]
    assert int(refused.headers["retry-after"]) >= 1


def test_a_viewer_cannot_act_an_operator_can_and_is_recorded_by_name(secured):
    bus, _tokens = secured
    viewer, operator = login(bus.http, "vera"), login(bus.http, "otto")
    assert call(bus.http, "GET", "/api/alerts", session=viewer).status == 200
    refused = call(bus.http, "POST", SILENCE, headers=ACTION, session=viewer)
    assert refused.status == 403
    error = refused.json()["error"]
    assert "'vera' (viewer)" in error and "POST /api/alerts/silence" in error
    assert "needs operator" in error
    assert call(bus.http, "POST", "/api/nodes/purge", headers=ACTION, session=viewer).status == 403

    done = call(bus.http, "POST", SILENCE, headers=ACTION, session=operator)
    assert done.status == 200, done
    silences = call(bus.http, "GET", "/api/alerts", session=operator).json()["silences"]
    assert [s["by"] for s in silences if s["subject"] == "echo-9"] == ["otto"]

    # Managing users takes an admin.
    assert call(bus.http, "GET", "/api/users", session=operator).status == 403
    admin = login(bus.http, "ada")
    listed = call(bus.http, "GET", "/api/users", session=admin).json()["users"]
    assert {u["name"]: u["role"] for u in listed} == {
        "ada": "admin",
        "otto": "operator",
        "vera": "viewer",
    }
    added = call(
        bus.http,
        "POST",
        "/api/users",
        headers=ACTION,
        session=admin,
        body={"name": "nina", "role": "viewer", "password": "nina's password"},
    )
    assert added.status == 201, added
    assert login(bus.http, "nina", "nina's password")
    assert call(bus.http, "DELETE", "/api/users/vera", headers=ACTION, session=admin).status == 200
    assert call(bus.http, "GET", "/api/alerts", session=viewer).status == 401  # vera is gone


def test_api_tokens_work_for_scripts_without_the_csrf_header(secured):
    bus, tokens = secured
    nodes = call(bus.http, "GET", "/api/nodes", token=tokens["vera"])
    assert nodes.status == 200 and nodes.json() == {"nodes": []}
    bad = call(bus.http, "GET", "/api/nodes", token=tokens["vera"][:-2] + "xx")
    assert bad.status == 401 and "not valid" in bad.json()["error"]
    assert call(bus.http, "POST", SILENCE, token=tokens["vera"]).status == 403
    # A bearer token is never sent by a browser on its own: no CSRF header needed.
    evil = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert call(bus.http, "POST", SILENCE, headers=evil, token=tokens["otto"]).status == 200
    assert call(bus.http, "GET", "/api/users", token=tokens["ada"]).status == 200
    basic = call(bus.http, "GET", "/api/nodes", headers={"Authorization": "Basic YWRhOng="})
    assert basic.status == 401 and "Bearer" in basic.json()["error"]


def test_a_browser_session_cannot_be_used_from_another_site(secured):
    bus, _tokens = secured
    operator = login(bus.http, "otto")
    for headers in (
        {},  # a plain form post cannot add the header
        {**ACTION, "Origin": "http://evil.example"},
        {**ACTION, "Sec-Fetch-Site": "cross-site"},
    ):
        reply = call(bus.http, "POST", SILENCE, headers=headers, session=operator)
        assert reply.status == 403 and "CSRF" in reply.json()["error"], headers
    # Logging in is guarded too: another site cannot log a browser into its account.
    forced = call(
        bus.http,
        "POST",
        "/login",
        headers={**ACTION, "Origin": "http://evil.example"},
        body={"name": "otto", "password": PASSWORDS["otto"]},
    )
    assert forced.status == 403 and "set-cookie" not in forced.headers


def test_metrics_and_healthz_can_require_a_token(bus_factory, tmp_path: Path):
    db = tmp_path / "bus.db"
    tokens = seed_users(db)
    bus = bus_factory(db=f"sqlite:///{db}", env={"POWERBUS_METRICS_AUTH": "token"})
    session = login(bus.http, "ada")
    for path in ("/metrics", "/healthz"):
        assert call(bus.http, "GET", path).status == 401, path
        assert call(bus.http, "GET", path, session=session).status == 401, "tokens only"
        assert call(bus.http, "GET", path, token=tokens["vera"]).status == 200, path


def test_before_any_user_loopback_is_served_unless_login_is_required(bus_factory):
    open_bus = bus_factory()
    me = call(open_bus.http, "GET", "/api/session")
    assert me.status == 200
    assert me.json() == {"user": "", "role": "operator", "credential": "loopback"}
    assert call(open_bus.http, "GET", "/api/users").status == 403  # users take a real admin
    strict = bus_factory(env={"POWERBUS_HTTP_AUTH": "required"})
    assert call(strict.http, "GET", "/api/overview").status == 401
    assert call(strict.http, "GET", "/").headers["location"].startswith("/login?next=")


def test_the_redirect_keeps_the_page_asked_for_and_open_paths_lead_nowhere_else(secured):
    bus, _tokens = secured
    reply = call(bus.http, "GET", "/topology?x=1")
    target = urllib.parse.parse_qs(urllib.parse.urlsplit(reply.headers["location"]).query)["next"]
    assert reply.status == 303 and target == ["/topology?x=1"]
    # The open prefixes serve only what is under them: no way round the gate to /api.
    for path in ("/static/../api/overview", "/login/../api/overview", "/logout/x"):
        assert call(bus.http, "GET", path).status in (404, 405), path


def test_actions_and_user_changes_are_audited_with_the_logged_in_user(
    secured, node_factory, tmp_path: Path
):
    bus, tokens = secured
    node_factory("echo", bus=bus, node_id="echo-1")
    operator, admin = login(bus.http, "otto"), login(bus.http, "ada")
    weighted = call(
        bus.http, "POST", "/api/nodes/echo-1/weight?value=40", headers=ACTION, session=operator
    )
    assert weighted.status == 200 and weighted.json()["changed"] is True
    added = call(
        bus.http,
        "POST",
        "/api/users",
        headers=ACTION,
        session=admin,
        body={"name": "nina", "role": "viewer", "password": "nina's password"},
    )
    assert added.status == 201
    assert call(bus.http, "DELETE", "/api/users/nina", token=tokens["ada"]).status == 200
    entries = call(bus.http, "GET", "/api/audit", session=operator).json()["entries"]
    seen = [(e["identity"], e["action"], e["target"]) for e in reversed(entries)]
    assert seen[-3:] == [
        ("http/otto", "node.weight", "node/echo-1"),
        ("http/ada", "user.add", "user/nina"),
        ("http/ada", "user.remove", "user/nina"),
    ]
    assert all(e["peer"].startswith("127.0.0.1:") for e in entries[:3])
    assert entries[1]["after"] == {"role": "viewer"}  # never the password
    # The seed's users were added on the host, by the operator running the tests.
    assert {e["identity"].split("/")[0] for e in entries[3:]} == {"local"}
