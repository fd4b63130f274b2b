"""Declaring a node: a class with a ``kind``, the generated servicers it implements as bases,
and the services it calls as :class:`BusClient` attributes.

>>> from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
>>> class Shouter(Node, echo_pb2_grpc.EchoServicer):
...     kind = "shouter"
...     echo = BusClient(echo_pb2_grpc.EchoStub, required=False)
...
...     async def Echo(self, request, context):
...         reply = await self.echo.Echo(request)  # through the bus, stamped with our id
...         return echo_pb2.EchoReply(message=reply.message.upper(), node_id=self.node_id)
>>> [s.name for s in Shouter.served_services()]
['powerbus.echo.v1.Echo']
>>> [(d.service, d.required) for d in Shouter.dependencies()]
[('powerbus.echo.v1.Echo', False)]

A :class:`~powerbus.nodes.sdk.runner.NodeRunner` serves the node: one shared gRPC server
per process, registration, heartbeats and draining are its job, not the node's.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, overload

import grpc

from powerbus.bus.kernel.errors import Unavailable
from powerbus.nodes.sdk.config import kind_settings
from powerbus.nodes.sdk.services import ServedService, is_generated_servicer, service_of_stub
from powerbus.registry.v1 import registry_pb2

if TYPE_CHECKING:
    from typing_extensions import Self

    from powerbus.nodes.sdk.channel import BusChannel
    from powerbus.nodes.sdk.config import NodeConfig
    from powerbus.nodes.sdk.middleware import Middleware

__all__ = ["BusClient", "ConfiguredNode", "Node", "bus_address_of"]

S = TypeVar("S")


class BusClient(Generic[S]):
    """A dependency on a service, called through the bus.

    As a class attribute of a :class:`Node` it declares the dependency (registered with the
    bus before any traffic flows); on an instance it is the generated stub on the node's
    bus channel.
    """

    def __init__(self, stub_type: Callable[[grpc.aio.Channel], S], *, required: bool = True):
        self.stub_type = stub_type
        self.service = str(service_of_stub(stub_type).full_name)  # type: ignore[arg-type]
        self.required = required
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> BusClient[S]: ...
    @overload
    def __get__(self, instance: Node, owner: type) -> S: ...
    def __get__(self, instance: Node | None, owner: type) -> BusClient[S] | S:
        if instance is None:
            return self
        return instance.bus.stub(self.stub_type)

    def to_proto(self) -> registry_pb2.Dependency:
        return registry_pb2.Dependency(service=self.service, required=self.required)


class Node:
    """Base class of every node.

    Subclasses set ``kind``, inherit the generated ``...Servicer`` classes of the services
    they serve and override their methods with ``async def`` handlers. ``node_id`` and
    ``bus`` are available once a runner has started the node; ``on_start``/``on_stop`` let a
    node open and close its own resources (a Modbus client, a database engine).
    """

    kind: ClassVar[str] = ""

    _node_id: str | None = None
    _bus: BusChannel | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = vars(cls).get("kind")
        if kind is not None and (not isinstance(kind, str) or not kind.strip()):
            raise TypeError(f"{cls.__qualname__}.kind must be a non-empty string")

    @classmethod
    def from_config(cls, config: NodeConfig, *, config_file: Path | None = None) -> Self:
        """Build the node for the CLI; nodes with settings of their own override this and
        read their own section of ``config_file``."""
        return cls()

    @classmethod
    def served_services(cls) -> tuple[ServedService, ...]:
        """The services this node serves, from its generated servicer base classes."""
        return tuple(ServedService.of(k) for k in cls.__mro__ if is_generated_servicer(k))

    @classmethod
    def dependencies(cls) -> tuple[BusClient[Any], ...]:
        """The services this node calls, declared by its :class:`BusClient` attributes."""
        found: dict[str, BusClient[Any]] = {}
        for klass in reversed(cls.__mro__):
            for value in vars(klass).values():
                if isinstance(value, BusClient):
                    found[value.service] = value
        return tuple(found[name] for name in sorted(found))

    def metadata(self) -> Mapping[str, str]:
        """Free-form facts registered with the node (version, site, ...)."""
        return {}

    def middleware(self) -> Sequence[Middleware]:
        """Middleware of this node's own, run around every call it serves (on gRPC and on
        the node link alike), inside the SDK's load counting and error mapping."""
        return ()

    async def on_start(self) -> None:
        """Called before the node starts serving."""

    async def on_stop(self) -> None:
        """Called after the server stopped; in-flight calls have finished or been cancelled."""

    @property
    def node_id(self) -> str:
        """This node's id, set when a runner starts it."""
        if self._node_id is None:
            raise RuntimeError(f"{type(self).__name__} is not running: no node id yet")
        return self._node_id

    @property
    def bus(self) -> BusChannel:
        """The channel to the bus, stamped with this node's id."""
        if self._bus is None:
            raise Unavailable(f"{type(self).__name__} has no bus: not running, or standalone")
        return self._bus

    def attach(self, *, node_id: str, bus: BusChannel | None) -> None:
        """Bind the node to its runner's id and channel (the runner calls this)."""
        self._node_id, self._bus = node_id, bus

    def detach(self) -> None:
        self._bus = None


SettingsT = TypeVar("SettingsT")


class ConfiguredNode(Node, Generic[SettingsT], metaclass=ABCMeta):
    """A node kind with settings of its own: a frozen dataclass with a ``section``, named
    by ``settings_type``, read from the kind's CLI options > ``POWERBUS_*`` > its table of
    the config file (:func:`~powerbus.nodes.sdk.config.kind_settings`).

    Subclasses say how to build themselves from those settings and the node's own
    :class:`NodeConfig` in :meth:`from_settings`.
    """

    settings_type: ClassVar[type[Any]]

    @classmethod
    def from_config(
        cls,
        config: NodeConfig,
        *,
        config_file: Path | None = None,
        options: Mapping[str, str] | None = None,
    ) -> Self:
        """Build the node for the CLI; an option the kind does not know is an error."""
        settings = kind_settings(cls.settings_type, options=options or {}, config_file=config_file)
        return cls.from_settings(settings, config)

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: SettingsT, config: NodeConfig) -> Self:
        """Build the node from its settings and the node's common configuration."""


def bus_address_of(config: NodeConfig) -> str | None:
    """The bus a node dials itself (for calls it makes outside the SDK's channel)."""
    return None if config.bus is None else str(config.bus)
