"""Realistic generated customers for demos and benchmarks, the same for the same seed.

Names, mobile numbers, resident ID numbers (GB 11643-1999, with their ISO 7064 MOD 11-2
check digit), addresses, accounts under the shipped tariffs, and a service point per
account, bound to the meters of a meter farm's file when one is given.

>>> a = generate(3, seed=7); b = generate(3, seed=7)
>>> [c.customer.name for c in a] == [c.customer.name for c in b]
True
>>> all(id_check_digit(c.id_number[:17]) == c.id_number[-1] for c in a)
True
>>> id_check_digit("11010519491231002")
'X'
"""

from __future__ import annotations

import csv
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from powerbus.bus.kernel.errors import ConfigError
from powerbus.common.v1 import common_pb2
from powerbus.crm.v1 import crm_pb2
from powerbus.nodes.crm.store.customers import CustomerStore

__all__ = [
    "MeterRow",
    "SeedCustomer",
    "generate",
    "id_check_digit",
    "load",
    "read_meters",
]

log = logging.getLogger(__name__)

METERS_HEADER = ("meter_id", "protocol", "gateway", "address", "model", "pulse_constant")

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
_DOUBLE_SURNAMES = ("欧阳", "司马", "诸葛", "上官")
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂兰建华文辉玉珍红梅鑫宇浩然子轩"
_MOBILE_PREFIXES = (
    "130",
    "131",
    "132",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "155",
    "158",
    "159",
    "176",
    "177",
    "180",
    "186",
    "188",
    "199",
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ORG_WORDS = ("机械", "食品", "纺织", "物流", "电子", "建材", "印刷", "医药")


@dataclass(frozen=True)
class _City:
    name: str
    district: str
    area_code: str
    streets: tuple[str, ...]
    towns: tuple[str, ...]
    residential_tariffs: tuple[str, ...]


_CITIES = (
    _City(
        "杭州市",
        "西湖区",
        "330106",
        ("文三路", "教工路", "古墩路", "天目山路"),
        ("三墩镇", "双浦镇"),
        ("cn-zhejiang-residential", "cn-zhejiang-residential-tou"),
    ),
    _City(
        "南京市",
        "玄武区",
        "320102",
        ("中山路", "北京东路", "龙蟠路"),
        ("孝陵卫街道",),
        ("cn-jiangsu-residential-tou",),
    ),
    _City(
        "北京市",
        "朝阳区",
        "110105",
        ("建国路", "朝阳北路", "望京街"),
        ("金盏乡", "孙河乡"),
        ("cn-beijing-residential",),
    ),
    _City(
        "武汉市",
        "武昌区",
        "420106",
        ("中北路", "武珞路", "和平大道"),
        ("白沙洲街道",),
        ("cn-residential-seasonal",),
    ),
)
_ORG_TARIFFS = (("cn-hubei-commercial-10kv", 0.0), ("cn-hubei-two-part-10kv", 400.0))
_EPOCH = datetime(2020, 1, 1, tzinfo=timezone.utc)
_HOUSEHOLD_MODELS = frozenset({"sdm120", "dlt645"})


@dataclass(frozen=True)
class MeterRow:
    """One line of a meter farm's meters file."""

    meter_id: str
    protocol: str
    gateway: str
    address: str
    model: str
    pulse_constant: int

    @property
    def serves_household(self) -> bool:
        """Single-phase meters serve households, three-phase ones and pulse terminals
        businesses (the meter farm deals its load classes by the same rule)."""
        return self.model in _HOUSEHOLD_MODELS

    def to_ref(self) -> common_pb2.MeterRef:
        """The meter as accounts hold it: ``protocol://gateway/address``."""
        return common_pb2.MeterRef(
            meter_id=self.meter_id, address=f"{self.protocol}://{self.gateway}/{self.address}"
        )


@dataclass(frozen=True)
class SeedCustomer:
    """A generated customer with one account and the area of its service point."""

    customer: crm_pb2.Customer
    id_number: str
    account: crm_pb2.Account
    area: int


def id_check_digit(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits of an ID number."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("need exactly 17 digits")
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def read_meters(path: Path) -> list[MeterRow]:
    """The meters of a meter farm's CSV file; :class:`ConfigError` naming file and line."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = tuple(next(reader, ()))
            if header != METERS_HEADER:
                raise ConfigError(f"meters: {path}:1: header must be {','.join(METERS_HEADER)}")
            return [_meter_row(path, number, line) for number, line in enumerate(reader, start=2)]
    except OSError as exc:
        raise ConfigError(f"meters: cannot read {path}: {exc.strerror}") from None


def _meter_row(path: Path, number: int, line: list[str]) -> MeterRow:
    if len(line) != len(METERS_HEADER) or not line[0].strip():
        raise ConfigError(f"meters: {path}:{number}: expected {len(METERS_HEADER)} fields")
    try:
        pulses = int(line[5] or 0)
    except ValueError:
        raise ConfigError(
            f"meters: {path}:{number}: pulse_constant {line[5]!r} is no integer"
        ) from None
    return MeterRow(line[0].strip(), line[1], line[2], line[3], line[4], pulses)


def generate(count: int, *, seed: int, meters: Sequence[MeterRow] = ()) -> list[SeedCustomer]:
    """``count`` customers from ``seed``; the i-th account gets the i-th meter when given
    (accounts beyond the meters get none), else a generated meter id."""
    rng = random.Random(seed)
    return [_customer(rng, index, meters) for index in range(count)]


def _customer(rng: random.Random, index: int, meters: Sequence[MeterRow]) -> SeedCustomer:
    organization = rng.random() < 0.1
    if index < len(meters):  # the meter says who it serves
        organization = not meters[index].serves_household
    city = _CITIES[3] if organization else rng.choice(_CITIES)
    person = _person_name(rng)
    name = f"{city.name[:2]}{rng.choice(_ORG_WORDS)}有限公司" if organization else person
    roll = rng.random()
    area = (
        crm_pb2.SERVICE_AREA_URBAN
        if roll < 0.75
        else crm_pb2.SERVICE_AREA_RURAL
        if roll < 0.95
        else crm_pb2.SERVICE_AREA_REMOTE
    )
    where = city.district + (rng.choice(city.towns) if area != crm_pb2.SERVICE_AREA_URBAN else "")
    address = (
        f"{city.name}{where}{rng.choice(city.streets)}{rng.randint(1, 399)}号"
        f"{rng.randint(1, 30)}幢{rng.randint(1, 28)}0{rng.randint(1, 4)}室"
    )
    customer_id = f"C{index + 1:08d}"
    account_id = f"{3300000000 + index + 1}"
    opened = _EPOCH + timedelta(days=rng.randint(0, 1800))
    customer = crm_pb2.Customer(
        customer_id=customer_id,
        name=name,
        kind=crm_pb2.CUSTOMER_KIND_ORGANIZATION
        if organization
        else crm_pb2.CUSTOMER_KIND_INDIVIDUAL,
        phones=[_mobile(rng)],
        email=f"user{index + 1}@example.com" if rng.random() < 0.3 else "",
        address=address,
        important=organization and rng.random() < 0.2,
    )
    account = crm_pb2.Account(
        account_id=account_id,
        customer_id=customer_id,
        name=name,
        status=crm_pb2.ACCOUNT_STATUS_ACTIVE,
        service_address=address,
    )
    account.opened_at.FromDatetime(opened)
    _supply(rng, account, city, organization)
    if meters:
        if index < len(meters):
            account.meters.append(meters[index].to_ref())
    else:
        account.meters.append(common_pb2.MeterRef(meter_id=f"MTR{index + 1:08d}"))
    return SeedCustomer(customer, _id_number(rng, city), account, area)


def _supply(rng: random.Random, account: crm_pb2.Account, city: _City, organization: bool) -> None:
    if organization:
        tariff, demand = rng.choice(_ORG_TARIFFS)
        account.tariff_id = tariff
        account.nominal_voltage_volts = 10000
        account.contract_capacity_kva = 630.0
        account.contract_demand_kw = demand
        account.power_factor_standard.value = "0.90"
    else:
        account.tariff_id = rng.choice(city.residential_tariffs)
        account.nominal_voltage_volts = 220
        account.contract_capacity_kva = rng.choice((4.0, 6.0, 8.0, 10.0))


def _person_name(rng: random.Random) -> str:
    surname = rng.choice(_DOUBLE_SURNAMES) if rng.random() < 0.03 else rng.choice(_SURNAMES)
    given = "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2, 2, 2))))
    return surname + given


def _mobile(rng: random.Random) -> str:
    return rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def _id_number(rng: random.Random, city: _City) -> str:
    born = date(1950, 1, 1) + timedelta(days=rng.randint(0, 19700))
    first17 = f"{city.area_code}{born:%Y%m%d}{rng.randint(1, 999):03d}"
    return first17 + id_check_digit(first17)


def load(store: CustomerStore, customers: Sequence[SeedCustomer]) -> int:
    """Write generated customers (upserts, so loading twice changes nothing); returns the
    number written."""
    count = store.put_many(
        (seeded.customer, seeded.id_number, seeded.account, seeded.area) for seeded in customers
    )
    log.info("seeded %d customers", count)
    return count
