"""See :mod:`powerbus.adapters.bank`."""
