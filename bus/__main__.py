"""``python -m powerbus.bus ...`` is the ``powerbus`` command."""

from powerbus.bus.cli import main

main()
