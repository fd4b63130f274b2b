"""The built-in echo node (``powerbus node echo``), for smoke tests, benchmarks and demos."""

from powerbus.nodes.echo.node import FAILED_KEY, EchoNode

__all__ = ["FAILED_KEY", "EchoNode"]
