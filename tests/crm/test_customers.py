"""Customers and accounts: upserts, search by name, phone, account and meter, paging, and
the errors crm.proto documents."""

from __future__ import annotations

import pytest

from powerbus.bus.kernel.errors import AlreadyExists, InvalidArgument, NotFound
from powerbus.common.v1 import common_pb2
from powerbus.crm.v1 import crm_pb2
from powerbus.nodes.crm.store.customers import CustomerStore


def person(cid: str, name: str, *phones: str) -> crm_pb2.Customer:
    return crm_pb2.Customer(
        customer_id=cid, name=name, kind=crm_pb2.CUSTOMER_KIND_INDIVIDUAL, phones=phones
    )


def account(aid: str, cid: str, *meters: str, **fields: object) -> crm_pb2.Account:
    return crm_pb2.Account(
        account_id=aid,
        customer_id=cid,
        tariff_id="cn-zhejiang-residential",
        meters=[common_pb2.MeterRef(meter_id=m) for m in meters],
        **fields,  # type: ignore[arg-type]
    )


def search(store: CustomerStore, **query: object) -> list[str]:
    request = crm_pb2.SearchCustomersRequest(**query)  # type: ignore[arg-type]
    return [c.customer_id for c in store.search(request).customers]


def test_put_customer_is_an_upsert_and_normalizes_phones(customers: CustomerStore) -> None:
    first = customers.put_customer(person("C1", "张三丰", "138-1234-1234"))
    again = customers.put_customer(person("C1", "张三丰", "13812341234", "0571 8888 6666"))
    assert list(first.phones) == ["13812341234"]
    assert list(again.phones) == ["13812341234", "057188886666"]
    assert again.created_at == first.created_at
    assert customers.get_customer("C1").phones == again.phones


@pytest.mark.parametrize(
    ("customer", "field"),
    [(person("", "张三"), "customer.customer_id"), (person("C1", " "), "customer.name")],
)
def test_put_customer_names_the_missing_field(
    customers: CustomerStore, customer: crm_pb2.Customer, field: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        customers.put_customer(customer)
    assert caught.value.field == field


def test_get_unknown_customer_is_not_found(customers: CustomerStore) -> None:
    with pytest.raises(NotFound, match="C404"):
        customers.get_customer("C404")


def test_search_by_each_query(customers: CustomerStore) -> None:
    customers.put_customer(person("C1", "张三丰", "13812341234"))
    customers.put_customer(person("C2", "李四", "13900001111"))
    customers.put_account(account("3300000001", "C1", "M-1"))
    customers.put_account(account("3300000002", "C2", "M-2", name="李四的小卖部"))
    assert search(customers, name="三丰") == ["C1"]
    assert search(customers, name="小卖部") == ["C2"]  # an account's name counts
    assert search(customers, phone="139 0000 1111") == ["C2"]
    assert search(customers, phone="1390000") == []  # exact, not a prefix
    assert search(customers, account_id="3300000001") == ["C1"]
    assert search(customers, meter_id="M-2") == ["C2"]
    assert search(customers, meter_id="M-9") == []


def test_search_name_wildcards_are_literal(customers: CustomerStore) -> None:
    customers.put_customer(person("C1", "张三丰"))
    assert search(customers, name="%%") == []


@pytest.mark.parametrize(
    ("query", "field"),
    [({}, "query"), ({"name": "张"}, "name"), ({"phone": "abc"}, "phone")],
)
def test_search_refuses_bad_queries(
    customers: CustomerStore, query: dict[str, str], field: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        search(customers, **query)
    assert caught.value.field == field


def test_search_pages_with_tokens(customers: CustomerStore) -> None:
    for n in range(5):
        customers.put_customer(person(f"C{n}", f"王小{n}号"))
    request = crm_pb2.SearchCustomersRequest(name="王小", page=common_pb2.PageRequest(page_size=2))
    seen: list[str] = []
    for _ in range(5):  # bounded: 3 pages expected
        reply = customers.search(request)
        seen += [c.customer_id for c in reply.customers]
        assert reply.page.total_size == 5
        if not reply.page.next_page_token:
            break
        request.page.page_token = reply.page.next_page_token
    assert seen == ["C0", "C1", "C2", "C3", "C4"]
    request.page.page_token = "not-a-token"
    with pytest.raises(InvalidArgument, match="page_token"):
        customers.search(request)


def test_put_account_binds_meters_and_lists(customers: CustomerStore) -> None:
    customers.put_customer(person("C1", "张三丰"))
    stored = customers.put_account(account("A1", "C1", "M-1", "M-2", service_address="杭州"))
    assert [m.meter_id for m in stored.meters] == ["M-1", "M-2"]
    assert list(customers.get_customer("C1").account_ids) == ["A1"]
    assert [a.account_id for a in customers.list_accounts("C1")] == ["A1"]
    point = customers.service_point_of_meter("M-2")
    assert point is not None and (point.account_id, point.customer_id) == ("A1", "C1")
    moved = customers.put_account(account("A1", "C1", "M-2"))
    assert [m.meter_id for m in moved.meters] == ["M-2"]
    assert customers.service_point_of_meter("M-1") is None


def test_put_account_errors(customers: CustomerStore) -> None:
    with pytest.raises(NotFound, match="C9"):
        customers.put_account(account("A1", "C9"))
    customers.put_customer(person("C1", "张三丰"))
    customers.put_customer(person("C2", "李四"))
    with pytest.raises(InvalidArgument, match=r"account\.tariff_id"):
        customers.put_account(crm_pb2.Account(account_id="A1", customer_id="C1"))
    with pytest.raises(InvalidArgument, match="below 40%"):
        customers.put_account(
            account("A1", "C1", contract_capacity_kva=630.0, contract_demand_kw=200.0)
        )
    customers.put_account(account("A1", "C1", "M-1"))
    with pytest.raises(AlreadyExists, match="'M-1' is already on open account 'A1'"):
        customers.put_account(account("A2", "C2", "M-1"))
    customers.put_account(account("A1", "C1", "M-1", status=crm_pb2.ACCOUNT_STATUS_CLOSED))
    moved = customers.put_account(account("A2", "C2", "M-1"))  # a closed account lets go
    assert [m.meter_id for m in moved.meters] == ["M-1"]
    assert customers.list_accounts("C1") == []
    assert [a.account_id for a in customers.list_accounts("C1", include_closed=True)] == ["A1"]


def test_balance_given_to_put_account_is_ignored(customers: CustomerStore) -> None:
    customers.put_customer(person("C1", "张三丰"))
    stored = customers.put_account(account("A1", "C1", balance=common_pb2.Money(fen=999)))
    assert not stored.HasField("balance")


def test_list_accounts_of_every_customer_filtered_and_paged(customers: CustomerStore) -> None:
    for n in range(7):
        customers.put_customer(person(f"C{n}", f"客户{n}"))
        tariff = "cn-beijing-residential" if n % 2 else "cn-zhejiang-residential"
        status = crm_pb2.ACCOUNT_STATUS_SUSPENDED if n == 3 else crm_pb2.ACCOUNT_STATUS_ACTIVE
        made = account(f"A{n}", f"C{n}", status=status)
        made.tariff_id = tariff
        customers.put_account(made)
    customers.put_account(account("A9", "C0", status=crm_pb2.ACCOUNT_STATUS_CLOSED))

    def listed(**fields: object) -> tuple[list[str], int]:
        ids: list[str] = []
        token, pages = "", 0
        while True:  # bounded: 8 accounts, pages of 3
            request = crm_pb2.ListAccountsRequest(
                page=common_pb2.PageRequest(page_size=3, page_token=token),
                **fields,  # type: ignore[arg-type]
            )
            reply = customers.page_accounts(request)
            ids += [a.account_id for a in reply.accounts]
            pages += 1
            token = reply.page.next_page_token
            if not token or pages > 5:
                return ids, reply.page.total_size

    assert listed() == ([f"A{n}" for n in range(7)], 7)
    assert listed(include_closed=True)[0] == [*(f"A{n}" for n in range(7)), "A9"]
    assert listed(tariff_id="cn-beijing-residential") == (["A1", "A3", "A5"], 3)
    assert listed(statuses=[crm_pb2.ACCOUNT_STATUS_SUSPENDED]) == (["A3"], 1)
    # a customer's accounts without a page: all of them in one reply, as before paging
    whole = customers.page_accounts(crm_pb2.ListAccountsRequest(customer_id="C0"))
    assert [a.account_id for a in whole.accounts] == ["A0"] and not whole.page.next_page_token
    with pytest.raises(NotFound, match="C404"):
        customers.page_accounts(crm_pb2.ListAccountsRequest(customer_id="C404"))
    with pytest.raises(InvalidArgument) as caught:
        customers.page_accounts(crm_pb2.ListAccountsRequest(statuses=[42]))
    assert caught.value.field == "statuses"
    with pytest.raises(InvalidArgument):
        customers.page_accounts(
            crm_pb2.ListAccountsRequest(page=common_pb2.PageRequest(page_token="nonsense"))
        )
