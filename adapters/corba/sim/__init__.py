"""The legacy CIS simulator (``powerbus sim legacy-cis``) and its generated data.

>>> from powerbus.adapters.corba.sim import CisDatabase
>>> len(CisDatabase.generate(count=10, seed=1).customers)
10
"""

from powerbus.adapters.corba.sim.cis_data import CisAccount, CisCustomer, CisDatabase
from powerbus.adapters.corba.sim.cis_server import SimSettings, run_simulator, servant_for

__all__ = [
    "CisAccount",
    "CisCustomer",
    "CisDatabase",
    "SimSettings",
    "run_simulator",
    "servant_for",
]
