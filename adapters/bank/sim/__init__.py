"""A simulated bank (``powerbus sim bank``): collections over the bank protocol with
faults, status queries and statement downloads answered, statement files and withholding
result files written into a drop folder.

>>> from powerbus.adapters.bank.sim import FaultPlan
>>> FaultPlan.parse("duplicate=0.1").duplicate
0.1
"""

from powerbus.adapters.bank.sim.book import BankBook, BankTxn
from powerbus.adapters.bank.sim.faults import FaultPlan, Malformed
from powerbus.adapters.bank.sim.settings import SimSettings, demo_key
from powerbus.adapters.bank.sim.simulator import BankSimulator, SimStats

__all__ = [
    "BankBook",
    "BankSimulator",
    "BankTxn",
    "FaultPlan",
    "Malformed",
    "SimSettings",
    "SimStats",
    "demo_key",
    "run_simulator",
]


def run_simulator(settings: SimSettings) -> int:
    """Run until SIGTERM/SIGINT; the exit status (0 after a clean stop)."""
    from powerbus.bus.kernel.lifecycle import run_until_signalled

    return run_until_signalled(lambda: BankSimulator(settings))
