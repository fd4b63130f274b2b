"""The access log: one line per call routed through the bus, as Envoy writes one per
request. Off by default (``powerbus bus --access-log``): a line per call costs more than
routing it.

Each line goes to the ``powerbus.access`` logger at INFO; with ``--log-format json`` its
fields are keys of the JSON object (``service``, ``method``, ``code``, ``duration_ms``,
``bytes_in``, ``bytes_out``, ``node``, ``caller``, ``origin``, ``attempts``); as text::

    [2026-12-04T12:00:00.123Z] "/powerbus.echo.v1.Echo/Echo" OK 1.2ms 12 30 node=echo-1 \
caller=demo origin=routed attempts=1
"""

from __future__ import annotations

import logging
import time

from powerbus.bus.kernel.calls import CallObserver, CallRecord
from powerbus.bus.kernel.masking import scrub

__all__ = ["AccessLog"]

log = logging.getLogger("powerbus.access")


class AccessLog:
    """A :class:`CallObserver` that tells ``inner`` first, then logs each call once (the
    attempt that was its outcome; earlier attempts are counted into ``attempts``).

    >>> from powerbus.bus.kernel.calls import NullObserver
    >>> observer = AccessLog(NullObserver())
    >>> observer.call_finished(CallRecord("powerbus.echo.v1.Echo", "Echo", "echo-1", "demo",
    ...                                   "OK", 0.0012, 12, 30))
    """

    def __init__(self, inner: CallObserver) -> None:
        self._inner = inner
        self._attempts: dict[tuple[str, str, str], int] = {}

    def call_started(self, service: str, method: str, node_id: str) -> None:
        self._inner.call_started(service, method, node_id)

    def call_finished(self, record: CallRecord) -> None:
        self._inner.call_finished(record)
        key = (record.service, record.method, record.caller)
        if not record.last:
            self._attempts[key] = self._attempts.get(key, 0) + 1
            return
        attempts = 1 + self._attempts.pop(key, 0)
        if not log.isEnabledFor(logging.INFO):
            return
        code = getattr(record.code, "name", record.code)
        # Callers name themselves, and a name may quote a phone: logged masked. The line
        # holds no payload, so nothing else can carry personal data.
        caller = scrub(record.caller)
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
        log.info(
            '[%s.%03dZ] "/%s/%s" %s %.1fms %d %d node=%s caller=%s origin=%s attempts=%d',
            stamp,
            int(now * 1000) % 1000,
            record.service,
            record.method,
            code,
            record.latency_s * 1000,
            record.bytes_in,
            record.bytes_out,
            record.node_id or "-",
            caller or "-",
            record.origin.value,
            attempts,
            extra={
                "service": record.service,
                "method": record.method,
                "code": code,
                "duration_ms": round(record.latency_s * 1000, 3),
                "bytes_in": record.bytes_in,
                "bytes_out": record.bytes_out,
                "node": record.node_id,
                "caller": caller,
                "origin": record.origin.value,
                "attempts": attempts,
            },
        )
