"""The legacy CIS simulator's data: a few thousand customers and their accounts, generated.

The same ``count`` and ``seed`` always give the same records, so tests can compute what
the simulator must answer. Records are kept as the CIS keeps them: text as Python
strings (the servant encodes GBK), amounts in yuan, dates as ``"YYYYMMDD"`` strings,
codes as two-character strings.

>>> db = CisDatabase.generate(count=50, seed=7)
>>> customer = db.customers[0]
>>> (customer.cust_no, db.customer(customer.cust_no) is customer)
('0100000001', True)
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["CisAccount", "CisCustomer", "CisDatabase", "QueryError"]

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董袁潘于蒋蔡"
    "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯"
    "龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
# Given-name characters; 喆, 堃 and 玥 are in GBK but not in GB 2312.
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志红玉梅文辉鹏飞丹萍喆堃玥"
_CITIES = (
    ("浙江省", "杭州市", ("西湖区", "拱墅区", "滨江区")),
    ("江苏省", "南京市", ("玄武区", "鼓楼区")),
)
_ROADS = ["文三路", "天目山路", "中山北路", "解放路", "人民路", "建设大道", "学院路", "江南大道"]
_ORGS = ("第一人民医院", "自来水公司", "机械厂", "实验中学", "纺织有限公司", "物流园", "商贸城")
_TARIFFS = ("RES-TIER-2024", "RES-TOU-2024", "COM-TOU-2024", "IND-2PART-2024")


class QueryError(Exception):
    """A query the CIS refuses (no condition, a name shorter than two characters)."""


@dataclass
class CisAccount:
    cons_no: str
    cust_no: str
    name: str
    status: str
    address: str
    tariff: str
    meters: list[tuple[str, str]]
    balance_yuan: float
    volt_code: str
    capacity_kva: float
    open_date: str
    bank_code: str
    rated_volts: int
    demand_kw: float


@dataclass
class CisCustomer:
    cust_no: str
    name: str
    cust_type: str
    address: str
    phones: list[str]
    vip: str
    open_date: str
    email: str
    contact: str
    accounts: list[CisAccount] = field(default_factory=list)


class CisDatabase:
    """Customers by number, with the indexes the CIS queries use."""

    def __init__(self, customers: Iterable[CisCustomer]) -> None:
        self.customers = list(customers)
        self._by_no = {c.cust_no: c for c in self.customers}
        self._accounts = {a.cons_no: a for c in self.customers for a in c.accounts}
        self._by_meter = {m[0]: a for a in self._accounts.values() for m in a.meters}

    @classmethod
    def generate(cls, *, count: int = 3000, seed: int = 2003) -> CisDatabase:
        rng = random.Random(seed)
        customers = [_customer(rng, n) for n in range(1, count + 1)]
        return cls(customers)

    def customer(self, cust_no: str) -> CisCustomer | None:
        return self._by_no.get(cust_no)

    def account(self, cons_no: str) -> CisAccount | None:
        return self._accounts.get(cons_no)

    def accounts_of(self, cust_no: str, *, include_cancelled: bool) -> list[CisAccount]:
        customer = self._by_no[cust_no]
        return [a for a in customer.accounts if include_cancelled or a.status != "9"]

    def query(
        self,
        *,
        name: str = "",
        tel: str = "",
        cons_no: str = "",
        meter_no: str = "",
    ) -> list[CisCustomer]:
        """Customers matching every condition given, in customer-number order."""
        if not (name or tel or cons_no or meter_no):
            raise QueryError("no query condition")
        if name and len(name) < 2:
            raise QueryError("CUST_NAME needs at least 2 characters")
        found = self.customers
        if cons_no:
            account = self._accounts.get(cons_no)
            found = [self._by_no[account.cust_no]] if account else []
        if meter_no:
            account = self._by_meter.get(meter_no)
            found = [c for c in found if account is not None and c.cust_no == account.cust_no]
        if tel:
            found = [c for c in found if tel in c.phones]
        if name:
            found = [c for c in found if name in c.name or any(name in a.name for a in c.accounts)]
        return found


def _customer(rng: random.Random, number: int) -> CisCustomer:
    province, city, districts = rng.choice(_CITIES)
    district = rng.choice(districts)
    organisation = rng.random() < 0.15
    surname = rng.choice(_SURNAMES)
    person = surname + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2))))
    name = f"{city[:-1]}{rng.choice(_ORGS)}" if organisation else person
    address = f"{province}{city}{district}{rng.choice(_ROADS)}{rng.randint(1, 999)}号"
    cust_no = f"01{number:08d}"
    year = rng.randint(1998, 2012)
    customer = CisCustomer(
        cust_no=cust_no,
        name=name,
        cust_type="02" if organisation else "01",
        address=address,
        phones=[f"1{rng.choice('3589')}{rng.randint(0, 999999999):09d}"]
        + ([f"0571{rng.randint(0, 9999999):07d}"] if rng.random() < 0.3 else []),
        vip="Y" if organisation and "医院" in name else "N",
        # A few records from the first data migration carry no date.
        open_date="00000000"
        if rng.random() < 0.02
        else f"{year}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}",
        email=f"c{number}@example.cn" if rng.random() < 0.4 else "",
        contact=person,
    )
    for index in range(rng.choice((1, 1, 1, 2, 3))):
        customer.accounts.append(_account(rng, customer, number, index, organisation))
    return customer


def _account(
    rng: random.Random, customer: CisCustomer, number: int, index: int, organisation: bool
) -> CisAccount:
    cons_no = f"33{number:07d}{index}"
    volt = rng.choice(("03", "04")) if organisation else rng.choice(("01", "01", "02"))
    status = rng.choices(("1", "2", "9", "0"), weights=(85, 6, 6, 3))[0]
    return CisAccount(
        cons_no=cons_no,
        cust_no=customer.cust_no,
        name=customer.name if index == 0 else f"{customer.name}{index + 1}号户",
        status=status,
        address=customer.address if index == 0 else f"{customer.address}附{index}",
        tariff=rng.choice(_TARIFFS[2:] if organisation else _TARIFFS[:2]),
        meters=[
            (f"5140{number:08d}{index}{m}", f"{number:09d}{index}{m}0")  # DL/T 645 address
            for m in range(rng.choice((1, 1, 2)))
        ],
        balance_yuan=round(rng.uniform(-800.0, 3000.0), 2),
        volt_code=volt,
        capacity_kva=float(rng.choice((315, 630, 1250) if organisation else (4, 8, 10, 16))),
        open_date=customer.open_date,
        bank_code=rng.choice(("", "0102", "0103", "0104", "0105")),
        rated_volts={"01": 220, "02": 380, "03": 10000, "04": 35000}[volt],
        demand_kw=round(rng.uniform(100, 900), 1) if organisation else 0.0,
    )
