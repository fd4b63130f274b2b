"""Deadlines for reading an HTTP request, which uvicorn does not have.

Uvicorn times out only an idle kept-alive connection; a client that sends its request
head a byte at a time (slowloris), or announces a body and never sends it, holds its
connection and a slot of the server for as long as it likes. Here a connection gets
``head`` seconds from its first byte (or from connecting) to finish the request line and
headers, then ``body`` seconds to finish the body; past either it is answered 408 when
nothing has been sent yet and closed, as nginx's ``client_header_timeout`` and
``client_body_timeout`` do. A response being streamed (the dashboard's live feed) is not
bounded: only reading the request is.

>>> limits = HttpLimits(head_timeout=10.0, body_timeout=30.0, max_connections=500)
>>> protocol = bounded_h11_protocol(limits)
>>> protocol.limits.head_timeout
10.0
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["HttpLimits", "bounded_h11_protocol"]

_log = logging.getLogger(__name__)

_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\n"
    b"content-length: 26\r\n\r\n"
    b"request not read in time\r\n"
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class HttpLimits:
    """How long a client may take to send a request, and how many connections at once."""

    head_timeout: float = 10.0
    """Seconds to send the request line and headers."""
    body_timeout: float = 30.0
    """Seconds, after the headers, to send the whole body."""
    max_connections: int = 1000
    """Connections served at once; beyond, new requests are answered 503."""

    def __post_init__(self) -> None:
        for name in ("head_timeout", "body_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be above 0, got {getattr(self, name)!r}")
        if self.max_connections < 1:
            raise ValueError(f"max_connections: must be at least 1, got {self.max_connections}")


class _BoundedH11Protocol(H11Protocol):
    limits: HttpLimits

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timer: asyncio.TimerHandle | None = None
        self._reading: object = None  # the h11 state the running timer bounds

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_reading()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The next request on a kept-alive connection starts with uvicorn's idle timeout;
        # its head is bounded from its first byte (data_received). A body still owed (the
        # app answered without reading it) stays bounded.
        if self.conn.their_state is not h11.SEND_BODY:
            self._stop_timer()

    def _watch_reading(self) -> None:
        state: object = self.conn.their_state
        if state is h11.IDLE and self.timeout_keep_alive_task is not None:
            state = None  # idle between requests: uvicorn's keep-alive timeout has it
        elif state not in (h11.IDLE, h11.SEND_BODY):
            state = None  # request read (or connection done): nothing to bound
        if state is self._reading:
            return
        self._stop_timer()
        if state is not None:
            timeout = self.limits.head_timeout if state is h11.IDLE else self.limits.body_timeout
            self._read_timer = self.loop.call_later(timeout, self._timed_out)
            self._reading = state

    def _stop_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
        self._read_timer = self._reading = None

    def _timed_out(self) -> None:
        reading, self._read_timer = self._reading, None
        if self.transport.is_closing():
            return
        _log.info(
            "closed an HTTP connection from %s: request %s not read in time",
            _peer(self.client),
            "head" if reading is h11.IDLE else "body",
        )
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE) and (
            self.cycle is None or not self.cycle.response_started
        ):
            self.transport.write(_TIMED_OUT)
        self.transport.close()


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "an unknown peer"


def bounded_h11_protocol(limits: HttpLimits) -> type[H11Protocol]:
    """Uvicorn's h11 protocol class with ``limits``' read deadlines (``uvicorn.Config(http=…)``)."""
    return type("BoundedH11Protocol", (_BoundedH11Protocol,), {"limits": limits})
