"""Meter acquisition shared by the southbound adapters: meter records and the meters
file, the :class:`MeterDriver` protocol, lines (one TCP connection per gateway, one
request in flight), typed errors, serial timing, and :class:`Acquisition` across lines.
The meter farm simulator is in ``powerbus.adapters.meters.sim``.

>>> from powerbus.adapters.meters import LineConfig
>>> LineConfig().connect_timeout.total_seconds()
2.0
"""

from powerbus.adapters.meters.acquisition import DRIVERS, Acquisition
from powerbus.adapters.meters.driver import MeterDriver, ReadScope
from powerbus.adapters.meters.errors import (
    DeviceRejected,
    FrameError,
    FrameProblem,
    GatewayUnreachable,
    MeterError,
    MeterTimeout,
)
from powerbus.adapters.meters.line import LineConfig, TcpLine
from powerbus.adapters.meters.meterfile import load_meters, read_meters, save_meters, write_meters
from powerbus.adapters.meters.records import (
    MeterReading,
    MeterSpec,
    Model,
    Quantity,
    Reading,
    WireProtocol,
)
from powerbus.adapters.meters.wire import exchange_seconds, frame_seconds

__all__ = [
    "DRIVERS",
    "Acquisition",
    "DeviceRejected",
    "FrameError",
    "FrameProblem",
    "GatewayUnreachable",
    "LineConfig",
    "MeterDriver",
    "MeterError",
    "MeterReading",
    "MeterSpec",
    "MeterTimeout",
    "Model",
    "Quantity",
    "ReadScope",
    "Reading",
    "TcpLine",
    "WireProtocol",
    "exchange_seconds",
    "frame_seconds",
    "load_meters",
    "read_meters",
    "save_meters",
    "write_meters",
]
