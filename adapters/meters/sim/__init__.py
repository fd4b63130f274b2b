"""The meter farm simulator (``powerbus sim meters``): SDM630/SDM120 meters and 8-channel
pulse terminals behind Modbus TCP gateways (a real pymodbus server), DL/T 645-2007 meters
behind transparent serial gateways (a frame server), with load profiles by customer
class, TOU registers, serial-line timing, stored history and injectable faults.

>>> settings = FarmSettings(meters=10, gateways=2, speed=3600)
>>> settings.baud
9600
"""

from powerbus.adapters.meters.sim.clock import SimClock
from powerbus.adapters.meters.sim.farm import FarmSettings, MeterFarm, run_farm
from powerbus.adapters.meters.sim.faults import Fault, FaultSpec, parse_faults
from powerbus.adapters.meters.sim.meter import SimMeter
from powerbus.adapters.meters.sim.population import LineMix
from powerbus.adapters.meters.sim.profile import CustomerClass

__all__ = [
    "CustomerClass",
    "FarmSettings",
    "Fault",
    "FaultSpec",
    "LineMix",
    "MeterFarm",
    "SimClock",
    "SimMeter",
    "parse_faults",
    "run_farm",
]
