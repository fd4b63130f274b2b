"""Personal data masked for display: the one place the CRM node turns PII into text.

Every string the node emits about a person (views, logs, ticket titles it writes itself)
goes through here, so a new output path cannot forget a rule.

>>> mask_name("张三丰"), mask_name("李四"), mask_name("欧阳娜娜")
('张*丰', '李*', '欧**娜')
>>> mask_phone("13812341234"), mask_id_number("11010519491231002X")
('138****1234', '**************002X')
>>> scrub("call 13812341234 or id 11010519491231002X")
'call 138****1234 or id **************002X'
"""

from __future__ import annotations

import logging
import re
from enum import Enum

__all__ = [
    "Audience",
    "ScrubbingFilter",
    "mask_address",
    "mask_email",
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


def mask_name(name: str) -> str:
    """Keep the first and last character, star the middle; two characters keep the first."""
    chars = name.strip()
    if len(chars) <= 1:
        return chars
    if len(chars) == 2:
        return chars[0] + "*"
    return chars[0] + "*" * (len(chars) - 2) + chars[-1]


def mask_phone(phone: str) -> str:
    """``138****1234``: the first three and last four digits of a mobile number; shorter
    numbers keep only their last four."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) >= 11:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    if len(digits) > 4:
        return "*" * (len(digits) - 4) + digits[-4:]
    return "*" * len(digits)


def mask_id_number(id_number: str) -> str:
    """Only the last four characters of a resident ID number (居民身份证号) show."""
    text = id_number.strip()
    return "*" * max(0, len(text) - 4) + text[-4:]


def mask_email(email: str) -> str:
    """``z***@example.com``: the first character of the local part and the domain."""
    local, at, domain = email.partition("@")
    if not at:
        return mask_name(email)
    return (local[:1] + "***" if local else "") + "@" + domain


def mask_address(address: str) -> str:
    """The address up to its district (区/县/镇/乡) shows; the street and number do not."""
    match = re.match(r"^(.*?(?:区|县|镇|乡))", address)
    keep = match.group(1) if match else address[: len(address) // 3]
    return keep + "****" if keep != address else address


# Mainland mobiles (1[3-9] + 9 digits) and 18-character ID numbers, standing alone in text.
_PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_ID_NUMBER = re.compile(r"(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])")


def scrub(text: str) -> str:
    """Mask any phone or ID number found in free text (a last line of defence for text the
    node did not compose itself, such as exception messages)."""
    text = _ID_NUMBER.sub(lambda m: mask_id_number(m.group(0)), text)
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)


class ScrubbingFilter(logging.Filter):
    """A logging filter that scrubs phones and ID numbers from every record it passes.

    The node's own messages never carry names or raw numbers; this catches what arrives
    inside arguments from elsewhere (an exception text quoting a request, say).

    >>> record = logging.LogRecord("crm", logging.INFO, "", 0, "phone %s", ("13812341234",), None)
    >>> ScrubbingFilter().filter(record), record.getMessage()
    (True, 'phone 138****1234')
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
