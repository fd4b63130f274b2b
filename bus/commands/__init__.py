"""The ``powerbus`` subcommands, one module each; ``powerbus.bus.cli`` assembles them."""
