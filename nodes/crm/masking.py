"""Personal data masked for display, by audience: the CRM node's side of the shared rules.

The rules themselves (how a name, a phone, an ID number… is masked) and the walk over a
message's fields marked personal in the protos live in the kernel
(:mod:`powerbus.bus.kernel.masking`, :mod:`powerbus.bus.kernel.personal_data`), so the
bus's own displays and this node's views mask alike. Here: who sees what. Every string
the node emits about a person (views, logs, ticket titles it writes itself) goes through
these, so a new output path cannot forget a rule.

>>> mask_name("张三丰"), mask_name("李四"), mask_name("欧阳娜娜")
('张*丰', '李*', '欧**娜')
>>> mask_phone("13812341234"), mask_id_number("11010519491231002X")
('138****1234', '**************002X')
>>> scrub("call 13812341234 or id 11010519491231002X")
'call 138****1234 or id **************002X'
"""

from __future__ import annotations

from enum import Enum

from google.protobuf.message import Message

from powerbus.bus.kernel.masking import (
    PersonalKind,
    ScrubbingFilter,
    mask_address,
    mask_email,
    mask_id_number,
    mask_name,
    mask_phone,
    scrub,
)
from powerbus.bus.kernel.personal_data import mask_in_place

__all__ = [
    "SHOWN_TO",
    "Audience",
    "ScrubbingFilter",
    "mask_address",
    "mask_email",
    "mask_for",
    "mask_id_number",
    "mask_name",
    "mask_phone",
    "scrub",
]


class Audience(str, Enum):
    """Who a view is for; sets which sections it holds and how much of the PII shows."""

    CUSTOMER = "customer"
    """The customer in a self-service channel (app, WeChat): their own usage and bills."""
    AGENT = "agent"
    """A service agent (95598, counter): identity, profile, tickets, payments, arrears."""


SHOWN_TO: dict[Audience, frozenset[PersonalKind]] = {
    Audience.CUSTOMER: frozenset(),
    # Agents dispatch crews to the address; the customer's own screen does not need it.
    Audience.AGENT: frozenset({PersonalKind.ADDRESS}),
}
"""The kinds of personal data each audience sees unmasked."""


def mask_for(message: Message, audience: Audience) -> None:
    """Mask the fields of ``message`` marked personal in place, as ``audience`` may see it.

    >>> from powerbus.crm.v1 import crm_pb2
    >>> c = crm_pb2.Customer(name="张三丰", phones=["13812341234"], address="杭州市西湖区文三路1号")
    >>> mask_for(c, Audience.AGENT)
    >>> c.name, list(c.phones), c.address
    ('张*丰', ['138****1234'], '杭州市西湖区文三路1号')
    """
    mask_in_place(message, keep=SHOWN_TO[audience])
