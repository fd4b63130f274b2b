"""How calls reach nodes, shared by the bus router and the SDK's proxyless client.

- :mod:`~powerbus.bus.transport.reply`: :class:`Reply` and the :class:`Transport` protocol;
- :mod:`~powerbus.bus.transport.link`, :mod:`~powerbus.bus.transport.frames`: the node link
  (unary calls as frames on one TCP connection per node);
- :mod:`~powerbus.bus.transport.grpc_transport`: the same calls as gRPC calls;
- :mod:`~powerbus.bus.transport.pool`: per node, a channel, its link and the transport that
  picks between them;
- :mod:`~powerbus.bus.transport.unary`: the one unary call path (executor, attempts,
  recording);
- :mod:`~powerbus.bus.transport.probes`: active ``grpc.health.v1`` checks;
- :mod:`~powerbus.bus.transport.grpc_status`: status codes at the gRPC edge.

It imports only the kernel, the load balancer and grpc: nothing of the bus server.
"""

from powerbus.bus.transport.grpc_status import abort_with, from_grpc, never_reached, to_grpc
from powerbus.bus.transport.grpc_transport import GrpcTransport
from powerbus.bus.transport.link import NodeLink
from powerbus.bus.transport.pool import NodeTransport, UpstreamPool
from powerbus.bus.transport.probes import HealthProber
from powerbus.bus.transport.reply import Metadata, Reply, Transport
from powerbus.bus.transport.unary import CallHeaders, UnaryCalls, read_headers

__all__ = [
    "CallHeaders",
    "GrpcTransport",
    "HealthProber",
    "Metadata",
    "NodeLink",
    "NodeTransport",
    "Reply",
    "Transport",
    "UnaryCalls",
    "UpstreamPool",
    "abort_with",
    "from_grpc",
    "never_reached",
    "read_headers",
    "to_grpc",
]
