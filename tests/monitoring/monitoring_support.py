"""Helpers of the monitoring tests: HTTP reads of an in-process bus, quick settings."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from powerbus.bus.server import BusServer
from powerbus.monitoring import MonitoringConfig
from powerbus.monitoring.http_client import fetch_json, fetch_text

ECHO = "powerbus.echo.v1.Echo"


async def get_json(bus: BusServer, path: str, **query: str) -> Any:
    """GET from the bus's HTTP port (in a thread: the bus serves on this loop)."""
    return await asyncio.to_thread(fetch_json, str(bus.http_address), path, timeout=5, **query)


async def get_text(bus: BusServer, path: str) -> str:
    return await asyncio.to_thread(fetch_text, str(bus.http_address), path, timeout=5)


def quick(**overrides: Any) -> MonitoringConfig:
    """Monitoring settings for tests: default rules, evaluated every 100 ms."""
    settings: dict[str, Any] = {"evaluate_interval": timedelta(milliseconds=100)}
    return MonitoringConfig(**{**settings, **overrides})
