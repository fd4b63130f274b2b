"""mTLS end to end, real processes: two buses sharing a database, an echo node and a
proxyless client, all with certificates from ``powerbus certs``; certificates rotated
under load without a failed call; plaintext and certificate-less clients refused; a
certificate naming another node cannot register, heartbeat or deregister its id."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from grpc_health.v1 import health_pb2, health_pb2_grpc
from typer.testing import CliRunner

from powerbus.bus.cli import app
from powerbus.bus.kernel.certificates import IdentityKind, init_ca, issue
from powerbus.bus.kernel.tls import TlsFiles
from powerbus.bus.transport.frames import WHERE_PATH, decode_where
from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.nodes.sdk.channel import BusChannel
from powerbus.nodes.sdk.proxyless import ProxylessClient
from powerbus.nodes.testing import eventually
from powerbus.nodes.testing.plugin import BusFactory, NodeFactory
from powerbus.registry.v1 import registry_pb2, registry_pb2_grpc
from tests.security.security_support import register_request

ECHO = "powerbus.echo.v1.Echo"


def _pki(directory: Path) -> Path:
    init_ca(directory)
    issue(directory, IdentityKind.BUS, "main")
    for node in ("echo-1", "client", "intruder"):
        issue(directory, IdentityKind.NODE, node)
    return directory


def _files(directory: Path, stem: str) -> TlsFiles:
    return TlsFiles(
        cert=directory / f"{stem}.pem", key=directory / f"{stem}.key", ca=directory / "ca.pem"
    )


def _flags(directory: Path, stem: str) -> dict[str, Any]:
    files = _files(directory, stem)
    return {"tls_cert": files.cert, "tls_key": files.key, "tls_ca": files.ca}


def _served_certificate(address: str, client: TlsFiles) -> bytes:
    """The DER certificate a new TLS handshake at ``address`` is answered with."""
    host, port = address.rsplit(":", 1)
    context = client.client_context()
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


async def _link_certificate(address: str, client: TlsFiles) -> bytes:
    """The DER certificate a new TLS handshake on the node link at ``address`` gets."""
    async with grpc.aio.secure_channel(address, client.channel_credentials()) as channel:
        where = channel.unary_unary(WHERE_PATH)
        port, _token = decode_where(await where(b"", timeout=5))
    host = address.rsplit(":", 1)[0]
    _reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=client.client_context(), server_hostname=host), 5
    )
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    await writer.wait_closed()
    assert der is not None
    return bytes(der)


def _der(path: Path) -> bytes:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return cert.public_bytes(serialization.Encoding.DER)


@dataclass
class _Load:
    """Echo calls on a few paths, counted, until stopped."""

    ok: dict[str, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, name: str, stub: Any) -> None:
        for i in range(100_000):  # bounded; stopped by the event long before
            if self.stop.is_set():
                return
            try:
                await stub.Echo(echo_pb2.EchoRequest(message=f"{name}-{i}"), timeout=5)
                self.ok[name] = self.ok.get(name, 0) + 1
            except grpc.aio.AioRpcError as exc:
                self.failed.append(f"{name}: {exc.code().name} {exc.details()}")
            await asyncio.sleep(0.005)


async def _first_success(stub: Any, what: str) -> None:
    async def once() -> bool:
        try:
            await stub.Echo(echo_pb2.EchoRequest(message="warm"), timeout=2)
        except grpc.aio.AioRpcError:
            return False
        return True

    await eventually(once, timeout=20, interval=0.2, what=what)


async def test_mtls_everywhere_rotation_under_load_and_refusals(
    tmp_path: Path, db_url: str, bus_factory: BusFactory, node_factory: NodeFactory
) -> None:
    pki = _pki(tmp_path / "certs")
    bus1 = bus_factory(db=db_url, **_flags(pki, "bus-main"))
    bus2 = bus_factory(db=db_url, **_flags(pki, "bus-main"))
    node = node_factory("echo", bus=bus1, node_id="echo-1", **_flags(pki, "node-echo-1"))
    client = _files(pki, "node-client")

    channels = [
        BusChannel(target=bus.grpc, caller="client", credentials=client.channel_credentials())
        for bus in (bus1, bus2)
    ]
    proxyless = ProxylessClient(bus=bus1.grpc, caller="client", tls=client)
    load = _Load()
    try:
        await proxyless.start()
        await proxyless.wait_for_nodes(ECHO, timeout=20)
        stubs = {
            "bus1": channels[0].stub(echo_pb2_grpc.EchoStub),
            "bus2": channels[1].stub(echo_pb2_grpc.EchoStub),
            "proxyless": proxyless.stub(echo_pb2_grpc.EchoStub),
        }
        for name, stub in stubs.items():
            await _first_success(stub, f"a call through {name}")
        tasks = [asyncio.create_task(load.run(n, s)) for n, s in stubs.items()]
        await asyncio.sleep(1.0)
        before = dict(load.ok)

        # Rotate the bus's and the node's certificates in place, as an operator would.
        old_bus, old_node = _der(pki / "bus-main.pem"), _der(pki / "node-echo-1.pem")
        issue(pki, IdentityKind.BUS, "main")
        issue(pki, IdentityKind.NODE, "echo-1")
        new_bus, new_node = _der(pki / "bus-main.pem"), _der(pki / "node-echo-1.pem")
        assert new_bus != old_bus and new_node != old_node
        # New handshakes get the new certificates, from the processes already running.
        assert await asyncio.to_thread(_served_certificate, bus1.grpc, client) == new_bus
        assert await asyncio.to_thread(_served_certificate, bus2.grpc, client) == new_bus
        assert await asyncio.to_thread(_served_certificate, node.address, client) == new_node
        assert await _link_certificate(node.address, client) == new_node
        # A channel opened after the rotation (new handshakes) carries calls too.
        fresh = BusChannel(
            target=bus2.grpc, caller="client", credentials=client.channel_credentials()
        )
        channels.append(fresh)
        tasks.append(asyncio.create_task(load.run("fresh", fresh.stub(echo_pb2_grpc.EchoStub))))
        await asyncio.sleep(1.5)
        load.stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=15)
    finally:
        load.stop.set()
        await proxyless.stop()
        for channel in channels:
            await channel.close()

    assert load.failed == []
    for name in ("bus1", "bus2", "proxyless"):
        assert load.ok[name] > before.get(name, 0), (name, before, load.ok)
    assert load.ok.get("fresh", 0) > 0
    # The same processes (each start costs seconds) refuse what they must.
    await _refusals(pki, bus1.grpc, node.address)
    # Operator commands take their client certificate from POWERBUS_TLS_*.
    env = {
        "POWERBUS_TLS_CERT": str(client.cert),
        "POWERBUS_TLS_KEY": str(client.key),
        "POWERBUS_TLS_CA": str(client.ca),
    }
    listed = CliRunner().invoke(app, ["nodes", "--bus", bus2.grpc, "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "echo-1" in listed.output
    plain = CliRunner().invoke(app, ["nodes", "--bus", bus2.grpc, "--json", "--timeout", "2"])
    assert plain.exit_code == 1
    assert "serves TLS; give your certificate with POWERBUS_TLS_CERT" in plain.output, plain.output


async def _refusals(pki: Path, bus: str, node: str) -> None:
    # Plaintext, and TLS without a client certificate: no connection at all.
    async with grpc.aio.insecure_channel(bus) as plain:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health_pb2_grpc.HealthStub(plain).Check(
                health_pb2.HealthCheckRequest(), timeout=3
            )
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    certless = grpc.ssl_channel_credentials(root_certificates=(pki / "ca.pem").read_bytes())
    async with grpc.aio.secure_channel(bus, certless) as anonymous:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health_pb2_grpc.HealthStub(anonymous).Check(
                health_pb2.HealthCheckRequest(), timeout=3
            )
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE

    # A valid certificate for node/intruder may not act as echo-1.
    intruder = _files(pki, "node-intruder").channel_credentials()
    async with grpc.aio.secure_channel(bus, intruder) as channel:
        registry = registry_pb2_grpc.RegistryStub(channel)
        listed = await registry.ListNodes(registry_pb2.ListNodesRequest(), timeout=5)
        assert [n.node_id for n in listed.nodes] == ["echo-1"]  # the connection itself is fine
        attempts = [
            registry.Register(
                registry_pb2.RegisterRequest(
                    node_id="echo-1", kind="echo", address="127.0.0.1:1", services=[ECHO]
                ),
                timeout=5,
            ),
            registry.Heartbeat(
                registry_pb2.HeartbeatRequest(node_id="echo-1", lease_id="x"), timeout=5
            ),
            registry.Deregister(
                registry_pb2.DeregisterRequest(node_id="echo-1", lease_id="x"), timeout=5
            ),
        ]
        for attempt in attempts:
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await attempt
            assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
            assert "'node/intruder', not 'node/echo-1'" in (denied.value.details() or "")
        # Nor register its own id at an address serving another identity's certificate.
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await registry.Register(register_request("intruder", node, services=(ECHO,)), timeout=5)
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert denied.value.details() == (
            f"Register intruder: the certificate served at {node} names 'node/echo-1', "
            "not 'node/intruder'"
        )
        listed = await registry.ListNodes(registry_pb2.ListNodesRequest(), timeout=5)
        # Nothing was taken over: echo-1 is still the real node, at its own address.
        assert [(n.node_id, n.address) for n in listed.nodes] == [("echo-1", node)]
