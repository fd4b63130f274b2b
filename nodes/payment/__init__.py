"""The payment node: payments, reversals (冲正) and reconciliation (对账) over a
double-entry ledger; beside it, in :mod:`powerbus.nodes.bank`, one node per bank.

>>> from powerbus.nodes.payment import PaymentNode
>>> PaymentNode.kind
'payment'
"""

from powerbus.nodes.payment.config import PaymentSettings
from powerbus.nodes.payment.node import PaymentNode
from powerbus.nodes.payment.store.payments import EventSink, PaymentStore

__all__ = ["EventSink", "PaymentNode", "PaymentSettings", "PaymentStore"]
