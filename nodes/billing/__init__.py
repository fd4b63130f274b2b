"""Billing (电费核算): the exact tariff engine in ``powerbus.nodes.billing.tariff`` and the
tariffs shipped with it in ``tariffs/*.toml``; the billing node (``node.py``) built on it.
Nothing heavy is imported here, so the engine stays importable on its own; the node is
``powerbus.nodes.billing.node:BillingNode``."""
