"""The public surface of the meter packages, and the import rule: adapters reach the bus
only through ``powerbus.bus.kernel``."""

from __future__ import annotations

import ast
import doctest
import importlib
import io
import pkgutil
from pathlib import Path

import pytest

import powerbus.adapters.dlt645 as dlt645
import powerbus.adapters.meters as meters
import powerbus.adapters.modbus as modbus
from powerbus.adapters.meters import MeterSpec, read_meters, write_meters
from powerbus.bus.kernel.errors import InvalidArgument

ROOT = Path(__file__).resolve().parents[2] / "adapters"
PACKAGES = (meters, modbus, dlt645)


def test_exported_members_are_pinned() -> None:
    assert meters.__all__ == [
        "DRIVERS", "Acquisition", "DeviceRejected", "FrameError", "FrameProblem",
        "GatewayUnreachable", "LineConfig", "MeterDriver", "MeterError", "MeterReading",
        "MeterSpec", "MeterTimeout", "Model", "Quantity", "ReadScope", "Reading", "TcpLine",
        "WireProtocol", "exchange_seconds", "frame_seconds", "load_meters", "read_meters",
        "save_meters", "write_meters",
    ]  # fmt: skip
    assert modbus.__all__ == sorted(modbus.__all__, key=lambda n: (not n.isupper(), n))
    assert dlt645.__all__ == sorted(dlt645.__all__, key=lambda n: (not n.isupper(), n))
    assert "Dlt645Client" in dlt645.__all__ and "ModbusDriver" in modbus.__all__


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package.__name__)
        names += [i.name for i in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(
        importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    assert result.failed == 0


def test_adapters_reach_the_bus_only_through_the_kernel() -> None:
    offenders = []
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.startswith("powerbus.bus") and not name.startswith("powerbus.bus.kernel"):
                    offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


def test_meters_file_round_trip_and_errors() -> None:
    text = (
        "meter_id,protocol,gateway,address,model,pulse_constant\n"
        "A,modbus,127.0.0.1:5020,7,sdm630,\n"
        "B,modbus,127.0.0.1:5020,9/8,pulse8,3200\n"
        "C,dlt645,127.0.0.1:6000,000102030425,dlt645,\n"
    )
    specs = read_meters(io.StringIO(text))
    out = io.StringIO()
    write_meters(specs, out)
    assert out.getvalue() == text
    assert (specs[1].unit, specs[1].channel, specs[1].pulse_constant) == (9, 8, 3200)
    for bad, field in (
        ("D,modbus,127.0.0.1:5020,9/9,pulse8,3200", "address"),
        ("D,modbus,127.0.0.1:5020,9/1,pulse8,", "pulse_constant"),
        ("D,dlt645,127.0.0.1:6000,12345,dlt645,", "address"),
        ("D,modbus,nohost,1,sdm120,", "gateway"),
        ("A,modbus,127.0.0.1:5020,8,sdm120,", "meter_id"),
    ):
        with pytest.raises(InvalidArgument) as caught:
            read_meters(io.StringIO(text + bad + "\n"))
        assert caught.value.field == f"line 5: {field}"
    assert isinstance(specs[0], MeterSpec)
