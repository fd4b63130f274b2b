"""The meters file: CSV with header ``meter_id,protocol,gateway,address,model,pulse_constant``.

>>> import io
>>> text = "meter_id,protocol,gateway,address,model,pulse_constant\\n"
>>> text += "D1,dlt645,127.0.0.1:6000,000102030425,dlt645,\\n"
>>> [m.meter_id for m in read_meters(io.StringIO(text))]
['D1']
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from typing import TextIO

from powerbus.adapters.meters.records import MeterSpec
from powerbus.bus.kernel.errors import InvalidArgument

__all__ = ["HEADER", "load_meters", "read_meters", "save_meters", "write_meters"]

HEADER = ("meter_id", "protocol", "gateway", "address", "model", "pulse_constant")


def read_meters(source: TextIO) -> list[MeterSpec]:
    """Parse a meters file; an error names the line and column that is wrong."""
    reader = csv.DictReader(source)
    if tuple(reader.fieldnames or ()) != HEADER:
        raise InvalidArgument("header", f"expected {','.join(HEADER)}, got {reader.fieldnames}")
    meters: list[MeterSpec] = []
    seen: set[str] = set()
    for line, row in enumerate(reader, start=2):
        try:
            spec = MeterSpec.from_row(row)
        except InvalidArgument as error:
            raise InvalidArgument(f"line {line}: {error.field}", str(error)) from None
        if spec.meter_id in seen:
            raise InvalidArgument(f"line {line}: meter_id", f"duplicate {spec.meter_id}")
        seen.add(spec.meter_id)
        meters.append(spec)
    return meters


def write_meters(meters: Iterable[MeterSpec], out: TextIO) -> None:
    """Write ``meters`` as a meters file."""
    writer = csv.DictWriter(out, fieldnames=HEADER, lineterminator="\n")
    writer.writeheader()
    for meter in meters:
        writer.writerow(meter.to_row())


def load_meters(path: str | os.PathLike[str]) -> list[MeterSpec]:
    """Read the meters file at ``path``."""
    with open(path, encoding="utf-8", newline="") as f:
        return read_meters(f)


def save_meters(meters: Iterable[MeterSpec], path: str | os.PathLike[str]) -> None:
    """Write the meters file atomically enough for a reader that waits for the state file."""
    buffer = io.StringIO()
    write_meters(meters, buffer)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(buffer.getvalue())
    os.replace(tmp, path)
