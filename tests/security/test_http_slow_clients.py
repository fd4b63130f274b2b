"""Slow HTTP clients (issue 13, item 6): a client trickling its request head or never
sending its body is answered 408 and closed within the configured deadline, while a normal
client is served throughout; connections beyond the limit are refused with 503."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

from powerbus.nodes.testing import eventually_sync

HEAD_TIMEOUT_S = 1.0
SLOW_CLIENTS = 60


def _connect(address: str) -> socket.socket:
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.settimeout(5)
    return sock


@contextlib.contextmanager
def _slow_clients(address: str, count: int) -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = _connect(address)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def _drips_until_closed(sock: socket.socket, *, limit_s: float) -> tuple[float, bytes]:
    """Send a header byte every 0.2 s; the seconds until the server closed, and its reply."""
    started = time.monotonic()
    reply = b""
    sock.settimeout(0.2)
    while time.monotonic() - started < limit_s:
        try:
            sock.sendall(b"X")
        except OSError:
            break
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except OSError:
            break
        if not chunk:
            break
        reply += chunk
    return time.monotonic() - started, reply


def _healthz(address: str) -> int:
    with urllib.request.urlopen(f"http://{address}/healthz", timeout=5) as reply:
        return int(reply.status)


def test_trickled_heads_are_cut_off_while_a_normal_client_is_served(bus_factory) -> None:
    bus = bus_factory(env={"POWERBUS_HTTP_HEAD_TIMEOUT": f"{HEAD_TIMEOUT_S}s"})
    with _slow_clients(bus.http, SLOW_CLIENTS) as socks:
        # Each of them holds a connection; a normal client still gets in at once.
        assert _healthz(bus.http) == 200
        took, reply = _drips_until_closed(socks[0], limit_s=10 * HEAD_TIMEOUT_S)
        assert took < 5 * HEAD_TIMEOUT_S, f"a trickling client was held {took:.1f}s"
        assert reply.startswith(b"HTTP/1.1 408 "), reply
        # The others, silent, were closed by the same deadline.
        closed = 0
        for sock in socks[1:]:
            sock.settimeout(5)
            with contextlib.suppress(OSError):
                data = sock.recv(4096)
                closed += data.startswith(b"HTTP/1.1 408") or data == b""
        assert closed == SLOW_CLIENTS - 1
    assert _healthz(bus.http) == 200


def test_a_body_never_sent_is_cut_off_and_connections_are_bounded(bus_factory) -> None:
    bus = bus_factory(
        env={"POWERBUS_HTTP_BODY_TIMEOUT": "1s", "POWERBUS_HTTP_MAX_CONNECTIONS": "20"}
    )
    sock = _connect(bus.http)
    started = time.monotonic()
    sock.sendall(
        b"POST /api/alerts/ack HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
        b"X-Powerbus-Action: 1\r\n\r\n{"
    )
    with contextlib.suppress(OSError):
        while sock.recv(4096):
            pass
    assert time.monotonic() - started < 5, "a client that never sent its body was held"
    sock.close()
    # Twenty idle connections fill the server; the next request is refused, not queued
    # (once the server has accepted all twenty), and the slots come back when they close.
    with _slow_clients(bus.http, 20):
        eventually_sync(lambda: _status(bus.http) == 503, timeout=10, what="503 at the limit")
    eventually_sync(lambda: _status(bus.http) == 200, timeout=10, what="the slots back")


def _status(address: str) -> int:
    try:
        return _healthz(address)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_bad_limits_are_refused_naming_the_key(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "powerbus.bus", "bus", "--grpc", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "POWERBUS_HTTP_HEAD_TIMEOUT": "0s"},
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "http_head_timeout: must be above 0" in result.stderr + result.stdout
