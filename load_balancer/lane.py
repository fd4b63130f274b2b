"""A lane: one service's balancer and call executor, the unit the router and the SDK's
proxyless client keep per service.
"""

from __future__ import annotations

from powerbus.load_balancer.balancer import Balancer
from powerbus.load_balancer.executor import CallExecutor, CallPolicy
from powerbus.load_balancer.settings import BalancerSettings

__all__ = ["Lane"]


class Lane:
    """A service's balancer and executor, configured together.

    >>> lane = Lane("powerbus.echo.v1.Echo", BalancerSettings(), CallPolicy())
    >>> lane.executor.balancer is lane.balancer
    True
    """

    __slots__ = ("balancer", "executor", "service")

    def __init__(
        self,
        service: str,
        balancer: BalancerSettings,
        calls: CallPolicy,
        *,
        local_zone: str = "",
    ) -> None:
        self.service = service
        self.balancer = Balancer(service, settings=balancer, local_zone=local_zone)
        self.executor = CallExecutor(self.balancer, calls)

    def configure(self, balancer: BalancerSettings, calls: CallPolicy) -> None:
        """Apply a changed policy (membership and health results stay)."""
        self.balancer.configure(balancer)
        self.executor.configure(calls)
