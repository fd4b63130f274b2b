"""The bank node: one per bank, BankGateway on the bus and the bank's protocol south.

>>> from powerbus.nodes.bank import BankNode
>>> BankNode.kind
'bank'
"""

from powerbus.nodes.bank.config import BankSettings
from powerbus.nodes.bank.node import BANK_LISTEN_KEY, BankNode

__all__ = ["BANK_LISTEN_KEY", "BankNode", "BankSettings"]
