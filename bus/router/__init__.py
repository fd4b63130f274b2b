"""The bus router: forwards calls for registered services to a node picked by the balancer.

Unary calls take the shared call path of :mod:`powerbus.bus.transport`; streams are
forwarded here (:mod:`~powerbus.bus.router.forwarding`).
"""

from powerbus.bus.router.balancers import Balancers, endpoint_of
from powerbus.bus.router.call import MethodRoute, RoutedCall
from powerbus.bus.router.router import Router

__all__ = ["Balancers", "MethodRoute", "RoutedCall", "Router", "endpoint_of"]
