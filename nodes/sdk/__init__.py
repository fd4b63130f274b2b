"""The node SDK: declare a node, run it on the bus, call other services through the bus.

>>> from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
>>> from powerbus.nodes.sdk import BusClient, Node
>>> class Greeter(Node, echo_pb2_grpc.EchoServicer):
...     kind = "greeter"
...     upstream = BusClient(echo_pb2_grpc.EchoStub)
...
...     async def Echo(self, request, context):
...         reply = await self.upstream.Echo(request)
...         return echo_pb2.EchoReply(message=f"hello {reply.message}", node_id=self.node_id)

Run it with ``async with NodeRunner(Greeter(), config=NodeConfig(...))`` or
``asyncio.run(run_node(Greeter(), config))`` (what ``powerbus node KIND`` does).
"""

from powerbus.nodes.sdk.channel import CALLER_KEY, BusChannel
from powerbus.nodes.sdk.config import NodeConfig, NodePriority
from powerbus.nodes.sdk.kinds import NODE_KINDS, load_kind
from powerbus.nodes.sdk.load import LoadCounter
from powerbus.nodes.sdk.node import BusClient, Node
from powerbus.nodes.sdk.process import run_node
from powerbus.nodes.sdk.registration import Lease, Registration
from powerbus.nodes.sdk.runner import NodeRunner
from powerbus.nodes.sdk.services import ServedService, file_descriptor_set

__all__ = [
    "CALLER_KEY",
    "NODE_KINDS",
    "BusChannel",
    "BusClient",
    "Lease",
    "LoadCounter",
    "Node",
    "NodeConfig",
    "NodePriority",
    "NodeRunner",
    "Registration",
    "ServedService",
    "file_descriptor_set",
    "load_kind",
    "run_node",
]
