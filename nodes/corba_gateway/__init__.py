"""The CORBA gateway: every interface of the bus's IDL served over IIOP, forwarded as gRPC.

>>> from powerbus.nodes.corba_gateway import CorbaGatewayNode
>>> CorbaGatewayNode.kind
'corba-gateway'
"""

from powerbus.nodes.corba_gateway.bridge import PEER_KEY, OperationBridge, servant_class
from powerbus.nodes.corba_gateway.config import GatewaySettings
from powerbus.nodes.corba_gateway.node import CorbaGatewayNode

__all__ = [
    "PEER_KEY",
    "CorbaGatewayNode",
    "GatewaySettings",
    "OperationBridge",
    "servant_class",
]
