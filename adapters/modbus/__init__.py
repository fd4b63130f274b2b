"""Modbus TCP meters on pymodbus 3.x: register maps as data (``registers``), word codecs
(``codec``), registers to readings (``readings``), the line client (``client``) whose
requests run as callback-driven exchanges (``exchange``, pymodbus's socket framer as the
codec), a line's chained poll (``line_poll``) and the meter driver (``driver``).

>>> from powerbus.adapters.modbus import SDM120, plan
>>> [(b.address, b.count) for b in plan(SDM120.energy_registers)]
[(72, 4)]
"""

from powerbus.adapters.modbus.client import ModbusLine
from powerbus.adapters.modbus.codec import (
    COUNTER_MODULUS,
    counter_delta,
    decode_float32,
    decode_uint32,
    encode_float32,
    encode_uint32,
    pulses_to_kwh,
    registers_bytes,
)
from powerbus.adapters.modbus.driver import ModbusDriver
from powerbus.adapters.modbus.registers import (
    MODELS,
    PULSE8,
    PULSE_STATUS,
    SDM120,
    SDM630,
    ReadBlock,
    Register,
    RegisterMap,
    Table,
    plan,
)

__all__ = [
    "COUNTER_MODULUS",
    "MODELS",
    "PULSE8",
    "PULSE_STATUS",
    "SDM120",
    "SDM630",
    "ModbusDriver",
    "ModbusLine",
    "ReadBlock",
    "Register",
    "RegisterMap",
    "Table",
    "counter_delta",
    "decode_float32",
    "decode_uint32",
    "encode_float32",
    "encode_uint32",
    "plan",
    "pulses_to_kwh",
    "registers_bytes",
]
