"""Access control with bearer tokens, real processes: a bus with ``--access-control``, an
echo node proving its id with a token, and callers with and without rights. Every
refusal names the identity, the request and the rule; every admin change is audited."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from typer.testing import CliRunner

from powerbus.bus.access import Actor, Effect, Right
from powerbus.bus.access.store import AccessStore
from powerbus.bus.cli import app
from powerbus.bus.kernel.certificates import IdentityKind, init_ca, issue
from powerbus.bus.kernel.tls import TlsFiles
from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.nodes.sdk.access import caller_identity
from powerbus.nodes.sdk.proxyless import ProxylessClient
from powerbus.nodes.testing import eventually
from powerbus.nodes.testing.plugin import BusFactory, NodeFactory
from powerbus.policy.v1 import policy_pb2, policy_pb2_grpc
from powerbus.registry.v1 import registry_pb2, registry_pb2_grpc
from powerbus.traffic.v1 import traffic_pb2, traffic_pb2_grpc
from tests.security.security_support import ECHO, T, register_request

ADMIN = Actor(identity="local/test", peer="local:test")


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=T) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


async def _code(call: Any) -> tuple[grpc.StatusCode, str]:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


@pytest.fixture
def access_db(tmp_path: Path) -> tuple[str, dict[str, str]]:
    """A bus database with tokens and rules made as an operator would, before the bus."""
    url = f"sqlite:///{tmp_path / 'bus.db'}"
    store = AccessStore.open(url)
    try:
        tokens = {
            who: store.tokens.create(who, ADMIN).text
            for who in ("node/echo-1", "client/ops", "client/guest")
        }
        store.rules.add("node/echo-*", Right.SERVE, ECHO, Effect.ALLOW, ADMIN)
        store.rules.add("client/ops", Right.CALL, f"{ECHO}/*", Effect.ALLOW, ADMIN)
        store.rules.add("client/*", Right.READ, "registry", Effect.ALLOW, ADMIN)
        store.rules.add("client/ops", Right.POLICY, ECHO, Effect.ALLOW, ADMIN)
        store.rules.add("node/*", Right.REPORT, "traffic", Effect.ALLOW, ADMIN)
    finally:
        store.close()
    return url, tokens


async def test_tokens_and_rules_decide_every_entry_point_and_admin_changes_are_audited(
    tmp_path: Path,
    access_db: tuple[str, dict[str, str]],
    bus_factory: BusFactory,
    node_factory: NodeFactory,
) -> None:
    url, tokens = access_db
    bus = bus_factory(db=url, access_control=True)
    token_file = tmp_path / "echo-1.token"
    token_file.write_text(tokens["node/echo-1"] + "\n")
    node_factory("echo", bus=bus, node_id="echo-1", token_file=token_file)
    ops, guest = _bearer(tokens["client/ops"]), _bearer(tokens["client/guest"])

    async with grpc.aio.insecure_channel(bus.grpc) as channel:
        echo = echo_pb2_grpc.EchoStub(channel)
        registry = registry_pb2_grpc.RegistryStub(channel)
        request = echo_pb2.EchoRequest(message="hi")

        # A caller the rules allow gets through; every call of the test succeeds.
        ok = 0
        for _ in range(20):
            reply = await echo.Echo(request, metadata=ops, timeout=T)
            ok += reply.message == "hi"
        assert ok == 20
        # The node learns who called as the bus proved it; a caller's own claim is dropped.
        claim = (*ops, ("x-powerbus-identity", "client/admin"))
        reply = await echo.Echo(request, metadata=claim, timeout=T)
        assert reply.metadata["x-powerbus-identity"] == "client/ops"

        # Anonymous and rights-less callers are refused, naming who, what and why.
        code, details = await _code(echo.Echo(request, timeout=T))
        assert code is grpc.StatusCode.PERMISSION_DENIED
        assert details == (
            f"anonymous may not call {ECHO}/Echo: no rule allows it (default deny)"
        ), details
        code, details = await _code(echo.Echo(request, metadata=guest, timeout=T))
        assert code is grpc.StatusCode.PERMISSION_DENIED and "client/guest" in details

        # A made-up or malformed token is refused as such, never taken for anonymous.
        forged = tokens["client/ops"][:-4] + "AAAA"
        code, details = await _code(echo.Echo(request, metadata=_bearer(forged), timeout=T))
        assert code is grpc.StatusCode.UNAUTHENTICATED and "unknown or revoked" in details
        code, _ = await _code(echo.Echo(request, metadata=_bearer("hunter2"), timeout=T))
        assert code is grpc.StatusCode.UNAUTHENTICATED
        # The usual mistake: the dashboard's API token given to a gRPC caller.
        code, details = await _code(echo.Echo(request, metadata=_bearer("pbh_x"), timeout=T))
        assert code is grpc.StatusCode.UNAUTHENTICATED and "HTTP API token" in details

        # Reading the registry is a right of its own.
        code, details = await _code(registry.ListNodes(registry_pb2.ListNodesRequest(), timeout=T))
        assert code is grpc.StatusCode.PERMISSION_DENIED and "read registry" in details
        listed = await registry.ListNodes(
            registry_pb2.ListNodesRequest(), metadata=guest, timeout=T
        )
        assert [n.node_id for n in listed.nodes] == ["echo-1"]

        # Registering: anonymous may not act as a node; a token acts only as its own node;
        # a node's identity serves only the services the rules give it.
        here = "127.0.0.1:1"
        code, details = await _code(registry.Register(register_request("echo-9", here), timeout=T))
        assert code is grpc.StatusCode.PERMISSION_DENIED and "anonymous" in details
        node_token = _bearer(tokens["node/echo-1"])
        code, details = await _code(
            registry.Register(register_request("echo-2", here), metadata=node_token, timeout=T)
        )
        assert code is grpc.StatusCode.PERMISSION_DENIED
        assert "names 'node/echo-1', not 'node/echo-2'" in details, details
        other = register_request("echo-1", here, services=("powerbus.metering.v1.Metering",))
        code, details = await _code(registry.Register(other, metadata=node_token, timeout=T))
        assert code is grpc.StatusCode.PERMISSION_DENIED
        assert "node/echo-1 may not serve powerbus.metering.v1.Metering" in details, details

        # Changing policy needs the right; the change is recorded with the proved identity.
        policies = policy_pb2_grpc.PoliciesStub(channel)
        change = policy_pb2.SetPolicyRequest(
            service=ECHO, set={"timeout": "1ms"}, updated_by="someone-else"
        )
        code, details = await _code(policies.SetPolicy(change, timeout=T))
        assert code is grpc.StatusCode.PERMISSION_DENIED and "policy" in details
        change = policy_pb2.SetPolicyRequest(
            service=ECHO, set={"timeout": "3s"}, updated_by="someone-else"
        )
        stored = await policies.SetPolicy(change, metadata=ops, timeout=T)
        assert stored.updated_by == "client/ops"

        # Traffic reports: only identities with the report right.
        report = traffic_pb2.ReportTrafficRequest(reporter="rogue")
        reports = traffic_pb2_grpc.TrafficReportsStub(channel)
        code, details = await _code(reports.ReportTraffic(report, timeout=T))
        assert code is grpc.StatusCode.PERMISSION_DENIED and "report traffic" in details

        # A revoked token stops working on the bus within its reload interval.
        store = AccessStore.open(url)
        try:
            ops_id = next(t.token_id for t in store.tokens.listed() if t.identity == "client/ops")
            store.tokens.revoke(ops_id, ADMIN)
            entries = store.audit.entries(limit=100)
        finally:
            store.close()

        async def refused() -> bool:
            code, _ = await _code(echo.Echo(request, metadata=ops, timeout=T))
            return code is grpc.StatusCode.UNAUTHENTICATED

        await eventually(refused, timeout=10, interval=0.2, what="the revoked token refused")

    actions = [(e.action, e.identity) for e in entries]
    assert ("policy.set", "client/ops") in actions
    assert actions.count(("rule.add", "local/test")) == 5
    assert actions.count(("token.create", "local/test")) == 3
    policy_entry = next(e for e in entries if e.action == "policy.set")
    assert policy_entry.target == ECHO and policy_entry.peer.startswith("ipv4:127.0.0.1")
    assert policy_entry.after["overrides"] == {"timeout": "3s"}
    assert policy_entry.after["claimed_by"] == "someone-else"
    assert policy_entry.before.get("overrides") is None

    # So do /api/audit (the dashboard's audit panel) and the CLI, newest first.
    status, body = await asyncio.to_thread(_get, f"http://{bus.http}/api/audit?action=policy")
    shown = body["entries"]
    assert status == 200 and [(e["action"], e["identity"], e["target"]) for e in shown] == [
        ("policy.set", "client/ops", ECHO)
    ]
    status, body = await asyncio.to_thread(_get, f"http://{bus.http}/api/audit?since=yesterday")
    assert status == 400 and "since: not a duration" in body["error"]
    listed = CliRunner().invoke(app, ["audit", "--db", url, "--action", "token", "--json"])
    assert listed.exit_code == 0, listed.output
    assert '"action": "token.revoke"' in listed.output.splitlines()[0]


async def test_a_token_proves_a_node_id_in_the_development_mode_too(
    tmp_path: Path, bus_factory: BusFactory
) -> None:
    # Without --access-control nothing is denied by rule, but a proved identity still
    # acts only as its own node.
    url = f"sqlite:///{tmp_path / 'bus.db'}"
    store = AccessStore.open(url)
    token = store.tokens.create("node/echo-1", ADMIN).text
    store.close()
    bus = bus_factory(db=url)
    async with grpc.aio.insecure_channel(bus.grpc) as channel:
        registry = registry_pb2_grpc.RegistryStub(channel)
        code, details = await _code(
            registry.Register(
                register_request("echo-7", "127.0.0.1:1"), metadata=_bearer(token), timeout=T
            )
        )
    assert code is grpc.StatusCode.PERMISSION_DENIED
    assert "token names 'node/echo-1'" in details, details


def test_cli_tokens_and_rules_explain_mistakes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bus.db'}"
    run = CliRunner().invoke
    # Run where no bus keeps its database: said, and no empty database made there.
    missing = run(app, ["acl", "list", "--db", url])
    assert missing.exit_code == 1 and "no bus database at" in missing.output
    assert not (tmp_path / "bus.db").exists()
    AccessStore.open(url).close()  # as the bus makes it
    made = run(app, ["tokens", "create", "echo-1", "--db", url])
    assert made.exit_code == 1
    assert "'echo-1' is not an identity: kind/name" in made.output
    bad = run(app, ["acl", "add", "node/*", "write", "x", "--db", url])
    assert bad.exit_code == 1 and "one of call, serve, read, policy, report, admin" in bad.output
    added = run(app, ["acl", "add", "node/*", "call", "pkg.Svc/*", "--db", url])
    assert added.output.strip() == "rule 1: allow node/* call pkg.Svc/*"
    allowed = run(app, ["acl", "check", "node/a", "call", "pkg.Svc/M", "--db", url])
    assert allowed.exit_code == 0 and "allowed, rule 1" in allowed.output
    denied = run(app, ["acl", "check", "node/a", "call", "other.Svc/M", "--db", url])
    assert denied.exit_code == 1 and "denied, no rule allows it" in denied.output
    removed = run(app, ["acl", "remove", "1", "--db", url])
    assert removed.exit_code == 0 and "rule 1 removed" in removed.output
    gone = run(app, ["acl", "remove", "1", "--db", url])
    assert gone.exit_code == 1 and "no rule 1" in gone.output


async def test_under_mtls_nodes_decide_proxyless_calls_by_the_bus_rules(
    tmp_path: Path, bus_factory: BusFactory, node_factory: NodeFactory
) -> None:
    # Proxyless clients reach nodes without the router: the node checks them itself.
    pki = tmp_path / "certs"
    init_ca(pki)
    files = {}
    for kind, name in (
        (IdentityKind.BUS, "main"),
        (IdentityKind.NODE, "echo-1"),
        (IdentityKind.CLIENT, "ops"),
        (IdentityKind.CLIENT, "guest"),
    ):
        issued = issue(pki, kind, name)
        files[name] = TlsFiles(cert=issued.cert, key=issued.key, ca=pki / "ca.pem")
    url = f"sqlite:///{tmp_path / 'bus.db'}"
    store = AccessStore.open(url)
    try:
        store.rules.add("node/echo-*", Right.SERVE, ECHO, Effect.ALLOW, ADMIN)
        store.rules.add("node/*", Right.READ, "registry", Effect.ALLOW, ADMIN)
        store.rules.add("node/*", Right.REPORT, "traffic", Effect.ALLOW, ADMIN)
        store.rules.add("client/*", Right.READ, "registry", Effect.ALLOW, ADMIN)
        store.rules.add("client/ops", Right.CALL, f"{ECHO}/*", Effect.ALLOW, ADMIN)
    finally:
        store.close()

    def flags(tls: TlsFiles) -> dict[str, Any]:
        return {"tls_cert": tls.cert, "tls_key": tls.key, "tls_ca": tls.ca}

    bus = bus_factory(db=url, access_control=True, **flags(files["main"]))
    node_factory("echo", bus=bus, node_id="echo-1", **flags(files["echo-1"]))
    request = echo_pb2.EchoRequest(message="direct")
    outcomes: dict[str, tuple[grpc.StatusCode, str]] = {}
    for who in ("ops", "guest"):
        client = ProxylessClient(bus=bus.grpc, caller=who, tls=files[who])
        try:
            await client.start()
            await client.wait_for_nodes(ECHO, timeout=20)
            echo = client.stub(echo_pb2_grpc.EchoStub)
            outcomes[who] = await _code(echo.Echo(request, timeout=T))
        finally:
            await client.stop()
    assert outcomes["ops"] == (grpc.StatusCode.OK, "")
    code, details = outcomes["guest"]
    assert code is grpc.StatusCode.PERMISSION_DENIED
    assert details == (
        f"client/guest may not call {ECHO}/Echo: no rule allows it (default deny) "
        "(checked by echo-1)"
    ), details
    # Through the bus the router decides, and the bus's own calls pass the node's check.
    async with grpc.aio.secure_channel(bus.grpc, files["ops"].channel_credentials()) as channel:
        reply = await echo_pb2_grpc.EchoStub(channel).Echo(request, timeout=T)
    assert reply.node_id == "echo-1"
    assert reply.metadata["x-powerbus-identity"] == "client/ops"


class _Context:
    """What caller_identity reads of a servicer context."""

    def __init__(self, certificate: str, metadata: tuple[tuple[str, str], ...]) -> None:
        self._certificate = certificate
        self._metadata = metadata

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"

    def auth_context(self) -> dict[str, list[bytes]]:
        if not self._certificate:
            return {"transport_security_type": [b"insecure"]}
        uri = f"spiffe://powerbus/{self._certificate}".encode()
        return {"transport_security_type": [b"ssl"], "x509_subject_alternative_name": [uri]}

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata


def test_a_node_believes_the_stamped_identity_only_from_a_bus() -> None:
    stamped = (("x-powerbus-identity", "client/ops"),)
    assert caller_identity(_Context("bus/main", stamped)) == "client/ops"
    assert caller_identity(_Context("bus/main", ())) == ""
    # A direct caller is its own certificate, whatever it claims.
    assert caller_identity(_Context("client/guest", stamped)) == "client/guest"
    assert caller_identity(_Context("", stamped)) == ""
