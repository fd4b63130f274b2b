"""Services a customer can order, from what the view knows about them (the customer
audience's "what can I do now").

>>> acct = crm_pb2.Account(account_id="1", tariff_id="cn-zhejiang-residential",
...                        status=crm_pb2.ACCOUNT_STATUS_ACTIVE)
>>> [o.code for o in orderable_services([acct], owing_fen=0, peak_share=0.3)]
['withholding_agreement', 'tou_tariff', 'meter_check', 'e_bill', 'new_connection']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from powerbus.crm.v1 import crm_pb2

__all__ = ["Offer", "orderable_services"]

# Below this peak share a time-of-use tariff saves money: peak hours are 13 of 24.
_TOU_WORTH_IT_SHARE = 0.5


@dataclass(frozen=True)
class Offer:
    """One orderable service: a stable code and its name for people."""

    code: str
    label: str


def orderable_services(
    accounts: Sequence[crm_pb2.Account], *, owing_fen: int, peak_share: float | None
) -> list[Offer]:
    """What the customer may order now, most pressing first."""
    offers: list[Offer] = []
    active = [a for a in accounts if a.status == crm_pb2.ACCOUNT_STATUS_ACTIVE]
    if owing_fen > 0:
        offers.append(Offer("pay_arrears", "缴纳电费"))
    if any(a.status == crm_pb2.ACCOUNT_STATUS_SUSPENDED for a in accounts):
        offers.append(Offer("reconnect", "复电申请"))
    if any(not a.withholding_bank_code for a in active):
        offers.append(Offer("withholding_agreement", "银行代扣签约"))
    cheap_off_peak = peak_share is not None and peak_share < _TOU_WORTH_IT_SHARE
    if cheap_off_peak and any(
        "-tou" not in a.tariff_id for a in active if "residential" in a.tariff_id
    ):
        offers.append(Offer("tou_tariff", "峰谷电价变更"))
    if any(a.contract_capacity_kva >= 100 for a in active):
        offers.append(Offer("capacity_change", "增容/减容"))
    if active:
        offers.append(Offer("meter_check", "电能表校验"))
        offers.append(Offer("e_bill", "电子账单订阅"))
    offers.append(Offer("new_connection", "新装用电"))
    return offers
