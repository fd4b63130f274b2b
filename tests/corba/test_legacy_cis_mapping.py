"""The legacy mapping as data: its value converters, its checks, and the engine running it.

The engine is run in-process against the simulator's own servant (the object the ORB
would dispatch to), so the mapping is tested without a network; test_corba_bus.py runs
the same through real processes.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from corba_support import MAPPING
from google.protobuf.timestamp_pb2 import Timestamp

from powerbus.adapters.corba.legacy import values
from powerbus.adapters.corba.legacy.engine import LegacyService
from powerbus.adapters.corba.legacy.mapping import MappingSpec
from powerbus.adapters.corba.sim.cis_data import CisDatabase
from powerbus.adapters.corba.sim.cis_server import servant_for
from powerbus.adapters.corba.stubs import Stubs
from powerbus.billing.v1 import billing_pb2
from powerbus.bus.kernel.errors import ConfigError, InvalidArgument
from powerbus.crm.v1 import crm_pb2
from powerbus.load_balancer import StatusCode

BEIJING = timezone(timedelta(hours=8))

# --- converters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yuan", "fen"),
    [
        (0.1, 10),
        (123.45, 12345),
        (-0.07, -7),
        (2.675, 268),
        (1e9, 100_000_000_000),
        (-800.0, -80000),
    ],
)
def test_yuan_to_fen_is_exact_to_the_fen(yuan: float, fen: int) -> None:
    convert = values.yuan_to_fen("balance")
    assert convert.to_proto(yuan) == fen
    assert convert.to_legacy(fen) == fen / 100  # half a fen (2.675) came in rounded up
    with pytest.raises(InvalidArgument, match="balance: amount is not a number"):
        convert.to_proto(float("nan"))


def test_dates_are_days_in_the_legacy_time_zone() -> None:
    convert = values.date("opened_at", zone=BEIJING)
    stamp = convert.to_proto("20030415")
    assert stamp.ToDatetime(tzinfo=timezone.utc) == datetime(2003, 4, 14, 16, tzinfo=timezone.utc)
    assert convert.to_legacy(stamp) == "20030415"
    for empty in ("", "00000000", "20230230"):
        assert convert.to_proto(empty) is None
    assert convert.to_legacy(Timestamp()) == ""


def test_gbk_text_and_what_gbk_cannot_write() -> None:
    convert = values.gbk("name")
    assert convert.to_proto("王喆".encode("gbk")) == "王喆"  # 喆 is GBK, not GB 2312
    assert convert.to_proto(b"\xff\xfe") == "\ufffd\ufffd" or "\ufffd" in convert.to_proto(
        b"\xff\xfe"
    )
    with pytest.raises(InvalidArgument, match="name: '😀' cannot be written in GBK"):
        convert.to_legacy("张😀")


def test_code_tables_map_codes_to_values_and_back() -> None:
    table = values.CodeTable("status", {"1": "ACTIVE", "2": "SUSPENDED"}, field="status")
    assert table.to_proto("2") == "SUSPENDED" and table.to_legacy("ACTIVE") == "1"
    with pytest.raises(InvalidArgument, match="code '7' is not in table status"):
        table.to_proto("7")
    lenient = values.CodeTable("status", {"1": "ACTIVE"}, default="UNKNOWN")
    assert lenient.to_proto("7") == "UNKNOWN"
    flags = values.CodeTable("yes_no", {"Y": True, "N": False})
    assert (flags.to_legacy(True), flags.to_legacy(False)) == ("Y", "N")


def test_row_tokens_and_digits() -> None:
    rows = values.row_token("page_token")
    assert (rows.to_proto(-1), rows.to_proto(50), rows.to_legacy(""), rows.to_legacy("50")) == (
        "",
        "50",
        0,
        50,
    )
    with pytest.raises(InvalidArgument, match="page_token: not a page token"):
        rows.to_legacy("abc")
    assert values.digits().to_legacy("138-0013 8000") == "13800138000"


# --- the engine on the shipped mapping ----------------------------------------------------


@pytest.fixture(scope="module")
def database() -> CisDatabase:
    return CisDatabase.generate(count=300, seed=11)


@pytest.fixture(scope="module")
def service(legacy_stubs: Stubs) -> LegacyService:
    return LegacyService.compile(MappingSpec.load(MAPPING), stubs=legacy_stubs)


@pytest.fixture(scope="module")
def cis(legacy_stubs: Stubs, database: CisDatabase) -> object:
    return servant_for(legacy_stubs, database)


def test_get_customer_converts_every_field(
    service: LegacyService, cis: object, database: CisDatabase
) -> None:
    record = next(c for c in database.customers if c.email and c.open_date != "00000000")
    reply = service.call(cis, "GetCustomer", crm_pb2.GetCustomerRequest(customer_id=record.cust_no))
    assert isinstance(reply, crm_pb2.Customer)
    assert reply.customer_id == record.cust_no
    assert reply.name == record.name and reply.address == record.address
    assert (
        reply.kind
        == {"01": crm_pb2.CUSTOMER_KIND_INDIVIDUAL, "02": crm_pb2.CUSTOMER_KIND_ORGANIZATION}[
            record.cust_type
        ]
    )
    assert list(reply.phones) == record.phones
    assert reply.email == record.email
    assert reply.important is (record.vip == "Y")
    assert list(reply.account_ids) == [a.cons_no for a in record.accounts]
    day = datetime.strptime(record.open_date, "%Y%m%d").replace(tzinfo=BEIJING)
    assert reply.created_at.ToDatetime(tzinfo=timezone.utc) == day


def test_accounts_carry_fen_enums_meters_and_properties(
    service: LegacyService, cis: object, database: CisDatabase
) -> None:
    record = next(c for c in database.customers if len(c.accounts) > 1)
    request = crm_pb2.ListAccountsRequest(customer_id=record.cust_no, include_closed=True)
    reply = service.call(cis, "ListAccounts", request)
    assert [a.account_id for a in reply.accounts] == [a.cons_no for a in record.accounts]
    for account, legacy in zip(reply.accounts, record.accounts, strict=True):
        assert account.balance.fen == round(legacy.balance_yuan * 100)
        assert account.balance.currency == "CNY"
        statuses = {"0": "PENDING", "1": "ACTIVE", "2": "SUSPENDED", "9": "CLOSED"}
        assert (
            crm_pb2.AccountStatus.Name(account.status)
            == f"ACCOUNT_STATUS_{statuses[legacy.status]}"
        )
        below_1kv = legacy.volt_code in ("01", "02")
        assert (account.supply_voltage == billing_pb2.VOLTAGE_LEVEL_BELOW_1KV) is below_1kv
        assert account.nominal_voltage_volts == legacy.rated_volts
        assert account.withholding_bank_code == legacy.bank_code
        assert [(m.meter_id, m.address) for m in account.meters] == legacy.meters


def test_search_pages_with_property_bag_conditions(
    service: LegacyService, cis: object, database: CisDatabase
) -> None:
    surname = database.customers[0].name[:2]
    expected = [
        c.cust_no
        for c in database.customers
        if surname in c.name or any(surname in a.name for a in c.accounts)
    ]
    request = crm_pb2.SearchCustomersRequest(name=surname)
    request.page.page_size = 2
    seen: list[str] = []
    for _ in range(100):
        reply = service.call(cis, "SearchCustomers", request)
        assert reply.page.total_size == len(expected)
        seen += [c.customer_id for c in reply.customers]
        if not reply.page.next_page_token:
            break
        request.page.page_token = reply.page.next_page_token
    assert seen == expected


def test_legacy_exceptions_become_the_declared_statuses(
    service: LegacyService, cis: object
) -> None:
    with pytest.raises(Exception) as caught:
        service.call(cis, "GetCustomer", crm_pb2.GetCustomerRequest(customer_id="9999"))
    error = service.error_for(caught.value)
    assert error.status is StatusCode.NOT_FOUND
    assert error.message == "customer 9999 does not exist: 客户不存在"
    with pytest.raises(Exception) as caught:
        service.call(cis, "SearchCustomers", crm_pb2.SearchCustomersRequest())
    assert service.error_for(caught.value).status is StatusCode.INVALID_ARGUMENT


def test_only_mapped_rpcs_are_served(service: LegacyService) -> None:
    assert sorted(service.methods) == [
        "GetAccount",
        "GetCustomer",
        "ListAccounts",
        "SearchCustomers",
    ]
    assert service.methods["GetCustomer"].idempotent


# --- the checks that fail at start-up, not at the first call --------------------------------


def _broken(tmp_path: Path, old: str, new: str) -> MappingSpec:
    folder = tmp_path / "legacy"
    folder.mkdir()
    shutil.copy(MAPPING.parent / "LegacyCIS.idl", folder)
    text = MAPPING.read_text(encoding="utf-8")
    assert old in text
    (folder / MAPPING.name).write_text(text.replace(old, new, 1), encoding="utf-8")
    return MappingSpec.load(folder / MAPPING.name)


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            'legacy = "CUST_NAME"',
            'legacy = "CUST_NAM"',
            "types.customer.fields[1]: ::LegacyCIS::CustInfo has no member 'CUST_NAM'",
        ),
        (
            'proto = "email"',
            'proto = "e_mail"',
            "types.customer.fields[4]: powerbus.crm.v1.Customer has no field 'e_mail'",
        ),
        ('convert = "yuan_to_fen"', 'convert = "yuan"', "unknown converter 'yuan'"),
        (
            '"1" = "ACCOUNT_STATUS_ACTIVE"',
            '"1" = "ACTIVE"',
            "codes.account_status: 'ACTIVE' is not a value of powerbus.crm.v1.AccountStatus",
        ),
        (
            'operation = "QueryConsByNo"',
            'operation = "QueryCons"',
            "methods.GetAccount.operation: the interface has no operation QueryCons",
        ),
        (
            'args = [{ proto = "account_id" }]',
            "args = []",
            "QueryConsByNo takes 1 argument(s), the mapping gives 0",
        ),
        (
            "[methods.GetAccount]",
            "[methods.GetAcount]",
            "powerbus.crm.v1.Customers has no rpc GetAcount",
        ),
        (
            'status = "NOT_FOUND", message = "customer',
            'status = "MISSING", message = "customer',
            "no gRPC status 'MISSING'",
        ),
    ],
)
def test_a_wrong_mapping_fails_naming_where(
    tmp_path: Path, legacy_stubs: Stubs, old: str, new: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        LegacyService.compile(_broken(tmp_path, old, new), stubs=legacy_stubs)
    assert problem in caught.value.message


def test_the_mapping_file_shape_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"methods.GetCustomer: unknown key\(s\) opperation"):
        _broken(tmp_path, 'operation = "QueryCustByNo"', 'opperation = "QueryCustByNo"')
