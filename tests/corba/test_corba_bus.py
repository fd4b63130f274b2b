"""The CORBA face and the legacy CIS, end to end through real processes.

One chain serves the module: a bus, an echo node, the legacy CIS simulator, the
legacy-cis adapter node (by the simulator's IOR file) and the CORBA gateway (IOR file and
omniNames). The CORBA client is a separate interpreter that imports only omniORBpy and
stubs compiled by omniidl from idl/powerbus.idl:

    client --IIOP--> gateway --gRPC--> bus --> legacy-cis --IIOP--> simulator
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import grpc
import pytest
from corba_support import OmniNames, run_client, start_sim

from powerbus.adapters.corba.errors import POWERBUS_VMCID
from powerbus.adapters.corba.ior import parse_ior, repository_id
from powerbus.adapters.corba.schema import CorbaSchema
from powerbus.adapters.corba.sim.cis_data import CisDatabase
from powerbus.bus.kernel.supervisor import BusHandle, NodeHandle, ProcessGroup, ProcessHandle
from powerbus.crm.v1 import crm_pb2, crm_pb2_grpc
from powerbus.nodes.testing import eventually_sync

CUSTOMERS, SEED = 400, 7
BEIJING = timezone(timedelta(hours=8))


@dataclass
class Chain:
    directory: Path
    names: OmniNames
    bus: BusHandle
    echo: NodeHandle
    sim: ProcessHandle
    cis: NodeHandle
    gateway: NodeHandle
    database: CisDatabase

    @property
    def gateway_iors(self) -> Path:
        return self.directory / "gateway.json"


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory, corba_env: dict[str, str]) -> Iterator[Chain]:
    directory = tmp_path_factory.mktemp("chain")
    group = ProcessGroup(directory=directory)
    names = OmniNames(directory)
    names.start()
    try:
        bus = group.start_bus(env=corba_env)
        echo = group.start_node("echo", bus=bus, node_id="echo-1", env=corba_env)
        cis_iors = directory / "cis.json"
        sim = start_sim(
            group, corba_env, ior_file=str(cis_iors), customers=str(CUSTOMERS), seed=str(SEED)
        )
        cis = group.start_node(
            "legacy-cis", bus=bus, node_id="cis-1", env=corba_env, ior_file=cis_iors
        )
        gateway = group.start_node(
            "corba-gateway",
            bus=bus,
            node_id="corba-1",
            # The gateway gives up on the bus after 2 s: the stalled-node test waits that long.
            env={**corba_env, "POWERBUS_CALL_TIMEOUT": "2s"},
            ior_file=directory / "gateway.json",
            naming=names.url,
        )
        yield Chain(
            directory=directory,
            names=names,
            bus=bus,
            echo=echo,
            sim=sim,
            cis=cis,
            gateway=gateway,
            database=CisDatabase.generate(count=CUSTOMERS, seed=SEED),
        )
    finally:
        try:
            group.close()
        finally:
            names.stop()


# --- CORBA clients through the gateway ----------------------------------------------------


def test_echo_operations_and_errors_over_iiop(chain: Chain, client_stubs: Path) -> None:
    result = run_client(client_stubs, f"ior:{chain.gateway_iors}", "echo")
    assert result["message"] == "你好, 电网"
    assert result["payload"] == [0, 1, 255]
    assert result["node_id"] == "echo-1"
    metadata = result["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["x-powerbus-caller"] == "corba-1"
    assert str(metadata["x-powerbus-corba-peer"]).startswith("giop:tcp:127.0.0.1:")
    assert result["expanded"] == [["tick", 0], ["tick", 1], ["tick", 2]]
    assert result["collected"] == "a b c"
    assert result["chat"] == ["x", "y"]
    assert result["errors"] == {
        "3": ["BAD_PARAM", POWERBUS_VMCID | 3],
        "5": ["IDL:powerbus/NotFound:1.0", "fail"],
        "6": ["IDL:powerbus/Conflict:1.0", "fail"],
        "9": ["IDL:powerbus/FailedPrecondition:1.0", "fail"],
        "14": ["TRANSIENT", POWERBUS_VMCID | 14],
    }


def test_customer_lookups_round_trip_to_the_legacy_cis(chain: Chain, client_stubs: Path) -> None:
    record = next(
        c for c in chain.database.customers if len(c.accounts) > 1 and c.open_date != "00000000"
    )
    # Found through omniNames, where the gateway bound itself.
    result = run_client(client_stubs, f"naming:{chain.names.url}", "crm", record.cust_no)
    customer = result["customer"]
    assert isinstance(customer, dict)
    assert customer["customer_id"] == record.cust_no
    assert customer["name"] == record.name
    expected_kind = (
        "CUSTOMER_KIND_INDIVIDUAL" if record.cust_type == "01" else "CUSTOMER_KIND_ORGANIZATION"
    )
    assert customer["kind"] == expected_kind
    assert customer["phones"] == record.phones
    assert customer["important"] is (record.vip == "Y")
    opened = datetime.strptime(record.open_date, "%Y%m%d").replace(tzinfo=BEIJING)
    assert customer["created_at"] == [int(opened.timestamp()), 0]
    assert customer["account_ids"] == [a.cons_no for a in record.accounts]
    accounts = result["accounts"]
    assert isinstance(accounts, list)
    assert [a["account_id"] for a in accounts] == [a.cons_no for a in record.accounts]
    assert [a["fen"] for a in accounts] == [round(a.balance_yuan * 100) for a in record.accounts]
    assert result["missing"] == ["NotFound", "customer 0000000000 does not exist: 客户不存在"]


def test_the_ior_file_names_every_interface(chain: Chain) -> None:
    iors = json.loads(chain.gateway_iors.read_text(encoding="utf-8"))
    expected = {repository_id(i.scoped_name) for i in CorbaSchema.installed().interfaces()}
    assert set(iors) == expected
    refs = [parse_ior(ior) for ior in iors.values()]
    assert {ref.address for ref in refs} == {refs[0].address}  # one IIOP endpoint
    assert all(ref.type_id in expected for ref in refs)


def test_iiop_traffic_shows_the_corba_peer_as_caller(chain: Chain, client_stubs: Path) -> None:
    run_client(client_stubs, f"ior:{chain.gateway_iors}", "echo")

    def reported() -> list[str]:
        with urllib.request.urlopen(f"http://{chain.bus.http}/metrics", timeout=5) as response:
            text = response.read().decode()
        return [
            line
            for line in text.splitlines()
            # The gateway's own count of CORBA calls; each is routed too, and counted once
            # as a call there.
            if line.startswith("powerbus_iiop_requests_total{")
            and 'caller="iiop:127.0.0.1"' in line
        ]

    lines = eventually_sync(reported, timeout=10, what="IIOP traffic in /metrics")
    assert any('node="corba-1"' in line and 'code="OK"' in line for line in lines), lines


# --- gRPC clients reach the legacy CIS through the bus -------------------------------------


def test_grpc_clients_get_fen_timestamps_and_enums(chain: Chain) -> None:
    record = next(c for c in chain.database.customers if len(c.accounts) > 1)
    with grpc.insecure_channel(chain.bus.grpc) as channel:
        customers = crm_pb2_grpc.CustomersStub(channel)
        reply = customers.ListAccounts(
            crm_pb2.ListAccountsRequest(customer_id=record.cust_no, include_closed=True), timeout=10
        )
        for account, legacy in zip(reply.accounts, record.accounts, strict=True):
            assert account.balance.fen == round(legacy.balance_yuan * 100)
            status = {"0": "PENDING", "1": "ACTIVE", "2": "SUSPENDED", "9": "CLOSED"}[legacy.status]
            assert crm_pb2.AccountStatus.Name(account.status) == f"ACCOUNT_STATUS_{status}"
            if legacy.open_date != "00000000":
                opened = datetime.strptime(legacy.open_date, "%Y%m%d").replace(tzinfo=BEIJING)
                assert account.opened_at.ToDatetime(tzinfo=timezone.utc) == opened
            else:
                assert not account.HasField("opened_at")
        account = customers.GetAccount(
            crm_pb2.GetAccountRequest(account_id=record.accounts[1].cons_no), timeout=10
        )
        assert account.name == record.accounts[1].name

        with pytest.raises(grpc.RpcError) as missing:
            customers.GetCustomer(crm_pb2.GetCustomerRequest(customer_id="nobody"), timeout=10)
        assert missing.value.code() is grpc.StatusCode.NOT_FOUND
        assert missing.value.details() == "customer nobody does not exist: 客户不存在"

        with pytest.raises(grpc.RpcError) as refused:
            customers.SearchCustomers(crm_pb2.SearchCustomersRequest(name="王"), timeout=10)
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT

        with pytest.raises(grpc.RpcError) as unmapped:
            customers.PutCustomer(crm_pb2.PutCustomerRequest(), timeout=10)
        assert unmapped.value.code() is grpc.StatusCode.UNIMPLEMENTED


def test_a_stalled_legacy_cis_is_a_deadline_not_a_hang(chain: Chain) -> None:
    with grpc.insecure_channel(chain.bus.grpc) as channel:
        customers = crm_pb2_grpc.CustomersStub(channel)
        request = crm_pb2.GetCustomerRequest(customer_id=chain.database.customers[0].cust_no)
        chain.sim.pause()
        try:
            with pytest.raises(grpc.RpcError) as stalled:
                customers.GetCustomer(request, timeout=1.5)
            assert stalled.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        finally:
            chain.sim.resume()
        assert customers.GetCustomer(request, timeout=10).customer_id == request.customer_id


def test_a_stalled_node_behind_the_gateway_is_a_corba_timeout(
    chain: Chain, client_stubs: Path
) -> None:
    chain.echo.pause()
    try:
        result = run_client(client_stubs, f"ior:{chain.gateway_iors}", "timeout")
    finally:
        chain.echo.resume()
    # The gateway's 2 s deadline ran out (DEADLINE_EXCEEDED), sent on as CORBA TIMEOUT.
    assert result == {"exception": "TIMEOUT", "minor": POWERBUS_VMCID | 4}


# --- the naming service: resolution survives omniNames and the CIS restarting -------------


def test_the_cis_is_found_again_through_a_restarted_naming_service(
    tmp_path: Path, corba_env: dict[str, str], powerbus_processes: ProcessGroup
) -> None:
    names = OmniNames(tmp_path / "names")
    names.start()
    try:
        group = powerbus_processes
        bus = group.start_bus(env=corba_env)
        sim = start_sim(group, corba_env, naming=names.url, customers="50", name="cis-sim-a")
        first = group.start_node(
            "legacy-cis", bus=bus, node_id="cis-a", env=corba_env, naming=names.url
        )
        database = CisDatabase.generate(count=50, seed=2003)
        request = crm_pb2.GetCustomerRequest(customer_id=database.customers[3].cust_no)
        expected = database.customers[3].name
        with grpc.insecure_channel(bus.grpc) as channel:
            customers = crm_pb2_grpc.CustomersStub(channel)
            assert customers.GetCustomer(request, timeout=10).name == expected

            names.stop()
            names.start()  # the same port and data folder, as an operator restarts it
            sim.stop()
            start_sim(group, corba_env, naming=names.url, customers="50", name="cis-sim-b")
            # The adapter's reference is stale (the CIS came back on another port): the call
            # fails to connect, the name is resolved again in the restarted omniNames (over
            # a new connection), and the call is sent again (GetCustomer is idempotent).
            assert customers.GetCustomer(request, timeout=10).name == expected

            # A new adapter finds the CIS through the restarted omniNames alone.
            first.stop()
            group.start_node(
                "legacy-cis", bus=bus, node_id="cis-b", env=corba_env, naming=names.url
            )
            assert customers.GetCustomer(request, timeout=10).name == expected
    finally:
        names.stop()
