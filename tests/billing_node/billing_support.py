"""What the billing node tests share besides fixtures: call deadlines and periods."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from powerbus.common.v1 import common_pb2

CALL_TIMEOUT = 10.0
SHANGHAI = ZoneInfo("Asia/Shanghai")


def period(year: int, month: int) -> common_pb2.Period:
    """The calendar month as a ``Period`` of local midnights."""
    start = datetime(year, month, 1, tzinfo=SHANGHAI)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=SHANGHAI)
    message = common_pb2.Period()
    message.start.FromDatetime(start)
    message.end.FromDatetime(end)
    return message
