"""Billing (电费核算): the exact tariff engine in ``powerbus.nodes.billing.tariff`` and the
tariffs shipped with it in ``tariffs/*.toml``. Nothing heavy is imported here, so the engine
stays importable on its own."""
