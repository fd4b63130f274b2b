"""The seed: deterministic, valid ID check digits and phones, bound to a meter farm's file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from powerbus.bus.kernel.errors import ConfigError
from powerbus.crm.v1 import crm_pb2
from powerbus.nodes.crm import seed
from powerbus.nodes.crm.store.customers import CustomerStore

METERS_CSV = """meter_id,protocol,gateway,address,model,pulse_constant
MTR-0001,modbus,127.0.0.1:15020,1,SDM630,0
MTR-0002,modbus,127.0.0.1:15020,2,SDM120,0
MTR-0003,pulse,127.0.0.1:15021,3,PT8,3200
"""


def gb11643_valid(number: str) -> bool:
    """The check the other way round (ISO 7064 MOD 11-2): Σ aᵢ·2^(17−i) ≡ 1 (mod 11),
    with X as 10; independent of the weight table the generator uses."""
    digits = [10 if c == "X" else int(c) for c in number]
    return sum(d * pow(2, 17 - i, 11) for i, d in enumerate(digits)) % 11 == 1


def test_the_same_seed_gives_the_same_customers() -> None:
    first = seed.generate(50, seed=42)
    again = seed.generate(50, seed=42)
    other = seed.generate(50, seed=43)
    assert first == again
    assert [c.customer.name for c in first] != [c.customer.name for c in other]


def test_id_numbers_phones_and_names_look_real() -> None:
    people = seed.generate(200, seed=1)
    for p in people:
        assert re.fullmatch(r"\d{17}[\dX]", p.id_number) and gb11643_valid(p.id_number)
        assert all(re.fullmatch(r"1[3-9]\d{9}", phone) for phone in p.customer.phones)
        assert len(p.customer.name) >= 2 and re.fullmatch(r"[\u4e00-\u9fff]+", p.customer.name)
    kinds = {p.customer.kind for p in people}
    assert kinds == {crm_pb2.CUSTOMER_KIND_INDIVIDUAL, crm_pb2.CUSTOMER_KIND_ORGANIZATION}
    assert {p.area for p in people} == {
        crm_pb2.SERVICE_AREA_URBAN,
        crm_pb2.SERVICE_AREA_RURAL,
        crm_pb2.SERVICE_AREA_REMOTE,
    }
    assert len({p.id_number for p in people}) == 200


def test_the_check_digit_of_the_standard_example() -> None:
    # GB 11643-1999's own example number.
    assert seed.id_check_digit("11010519491231002") == "X"
    assert gb11643_valid("11010519491231002X")
    assert not gb11643_valid("110105194912310021")


def test_accounts_are_bound_to_the_meters_file(tmp_path: Path) -> None:
    path = tmp_path / "meters.csv"
    path.write_text(METERS_CSV)
    meters = seed.read_meters(path)
    people = seed.generate(5, seed=3, meters=meters)
    bound = [[(m.meter_id, m.address) for m in p.account.meters] for p in people]
    assert bound[:3] == [
        [("MTR-0001", "modbus://127.0.0.1:15020/1")],
        [("MTR-0002", "modbus://127.0.0.1:15020/2")],
        [("MTR-0003", "pulse://127.0.0.1:15021/3")],
    ]
    assert bound[3:] == [[], []]  # more customers than meters: the rest have none


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("meter_id,protocol\nM1,modbus\n", ":1: header"),
        (METERS_CSV + "MTR-0004,modbus\n", ":5: expected 6 fields"),
        (METERS_CSV + "MTR-0004,pulse,gw,4,PT8,many\n", ":5: pulse_constant 'many'"),
    ],
)
def test_a_bad_meters_file_names_file_and_line(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "meters.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(f"{path}{where}")):
        seed.read_meters(path)


def test_loading_twice_changes_nothing(customers: CustomerStore) -> None:
    people = seed.generate(20, seed=9)
    seed.load(customers, people)
    before = [customers.get_customer(c) for c in customers.customer_ids()]
    seed.load(customers, people)
    after = [customers.get_customer(c) for c in customers.customer_ids()]
    assert before == after and len(after) == 20
    first = people[0]
    assert customers.id_number(first.customer.customer_id) == first.id_number
    found = customers.search(crm_pb2.SearchCustomersRequest(phone=first.customer.phones[0]))
    assert first.customer.customer_id in [c.customer_id for c in found.customers]
