"""Alert delivery to webhooks in Alertmanager's webhook format, so any receiver written
for Alertmanager (chat bridges, paging tools, ticketing) takes powerbus alerts as they are.

Each raise and clear is POSTed as one notification (``status`` firing or resolved, one
alert) to every URL of ``[monitoring] alert_webhooks`` (comma-separated), unless a
silence matches it. Sending is a task of its own, behind a bounded queue: the alert book
never waits for a receiver; each POST has a deadline and is tried three times.

>>> from powerbus.monitoring.rules import AlertKind, Severity
>>> body = notification(Alert(rule="node-down", kind=AlertKind.NODE_DOWN,
...     severity=Severity.CRITICAL, subject="echo-2", message="echo-2 is down",
...     raised_at=0.0), external_url="http://127.0.0.1:8080/")
>>> body["status"], body["alerts"][0]["labels"]["alertname"], body["version"]
('firing', 'node-down', '4')
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

from powerbus.monitoring.alerts import Alert

__all__ = ["WebhookDelivery", "notification"]

log = logging.getLogger(__name__)

_QUEUE = 1000
_TRIES = 3
_ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "not ended"


def notification(alert: Alert, *, external_url: str) -> dict[str, object]:
    """Alertmanager's webhook payload (version 4) for one alert raised or cleared."""
    status = "firing" if alert.active else "resolved"
    labels = {
        "alertname": alert.rule,
        "severity": alert.severity.value,
        "kind": alert.kind.value,
        "subject": alert.subject,
    }
    fingerprint = hashlib.sha256(f"{alert.rule}\0{alert.subject}".encode()).hexdigest()[:16]
    return {
        "version": "4",
        "groupKey": f"{{}}:{{alertname={alert.rule!r}}}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "powerbus",
        "groupLabels": {"alertname": alert.rule},
        "commonLabels": labels,
        "commonAnnotations": {"summary": alert.message},
        "externalURL": external_url,
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": {"summary": alert.message},
                "startsAt": _rfc3339(alert.raised_at),
                "endsAt": _rfc3339(alert.cleared_at) if alert.cleared_at else _ZERO_TIME,
                "generatorURL": external_url,
                "fingerprint": fingerprint,
            }
        ],
    }


class WebhookDelivery:
    """Posts alerts to ``urls``; :meth:`offer` is the alert book's listener."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        timeout: float,
        external_url: Callable[[], str],
        silenced: Callable[[str, str], bool],
    ) -> None:
        self.urls = tuple(urls)
        self.delivered = 0
        self.failed = 0
        self._timeout = timeout
        self._external_url = external_url
        self._silenced = silenced
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(maxsize=_QUEUE)
        self._task: asyncio.Task[None] | None = None

    def offer(self, alert: Alert) -> None:
        if not self.urls or self._silenced(alert.rule, alert.subject):
            return
        try:
            self._queue.put_nowait(alert)
        except asyncio.QueueFull:
            self.failed += 1
            log.warning("alert %s/%s not delivered: the queue is full", alert.rule, alert.subject)

    async def start(self) -> None:
        if self._task is None and self.urls:
            self._task = asyncio.create_task(self._send_forever(), name="alert-webhooks")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _send_forever(self) -> None:
        while True:
            alert = await self._queue.get()
            body = json.dumps(notification(alert, external_url=self._external_url())).encode()
            for url in self.urls:
                await self._send(url, body, alert)

    async def _send(self, url: str, body: bytes, alert: Alert) -> None:
        for attempt in range(_TRIES):
            try:
                await asyncio.to_thread(self._post, url, body)
            except (OSError, urllib.error.URLError) as exc:
                if attempt + 1 == _TRIES:
                    self.failed += 1
                    log.warning(
                        "alert %s/%s not delivered to %s: %s", alert.rule, alert.subject, url, exc
                    )
                    return
                await asyncio.sleep(0.5 * 2**attempt)
            else:
                self.delivered += 1
                return

    def _post(self, url: str, body: bytes) -> None:
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=self._timeout) as response:
            response.read()


def _rfc3339(at: float) -> str:
    return (
        datetime.fromtimestamp(at, timezone.utc)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )
