"""How each kind of personal data is masked for display: the one set of rules.

Fields marked ``[(powerbus.common.v1.personal) = …]`` in the protos are masked by their
kind (:mod:`powerbus.bus.kernel.personal_data` walks the messages); the CRM node's views
and log filter use the same functions. Every rule is idempotent, so text masked twice (a
node's view, then the bus's display of it) reads the same as masked once.

>>> mask_name("张三丰"), mask_name("李四"), mask_name("欧阳娜娜")
('张*丰', '李*', '欧**娜')
>>> mask_phone("13812341234"), mask_id_number("11010519491231002X")
('138****1234', '**************002X')
>>> mask_bank_account("6222021234567890123")
'***************0123'
>>> mask(PersonalKind.PHONE, "138****1234")
'138****1234'
>>> scrub("call 13812341234 or id 11010519491231002X")
'call 138****1234 or id **************002X'
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from enum import Enum

__all__ = [
    "RULES",
    "PersonalKind",
    "ScrubbingFilter",
    "mask",
    "mask_address",
    "mask_bank_account",
    "mask_email",
    "mask_id_number",
    "mask_name",
    "mask_phone",
    "scrub",
]


class PersonalKind(str, Enum):
    """A kind of personal data (the proto enum ``powerbus.common.v1.PersonalData``)."""

    NAME = "name"
    PHONE = "phone"
    ID_NUMBER = "id_number"
    ADDRESS = "address"
    BANK_ACCOUNT = "bank_account"
    EMAIL = "email"
    FREE_TEXT = "free_text"
    """Text that may quote any of the others: the phones and ID numbers in it are masked."""


_STARS = "****"


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
    # Stars count as digits, so a masked number keeps its shape when masked again.
    digits = re.sub(r"[^\d*]", "", phone)
    if len(digits) >= 11:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    if len(digits) > 4:
        return "*" * (len(digits) - 4) + digits[-4:]
    return "*" * len(digits)


def _last_four(text: str) -> str:
    text = text.strip()
    return "*" * max(0, len(text) - 4) + text[-4:]


def mask_id_number(id_number: str) -> str:
    """Only the last four characters of a resident ID number (居民身份证号) show."""
    return _last_four(id_number)


def mask_bank_account(account: str) -> str:
    """Only the last four digits of a bank account or card number show (spaces dropped)."""
    return _last_four(re.sub(r"\s", "", account))


def mask_email(email: str) -> str:
    """``z***@example.com``: the first character of the local part and the domain."""
    local, at, domain = email.partition("@")
    if not at:
        return mask_name(email)
    return (local[:1] + "***" if local else "") + "@" + domain


def mask_address(address: str) -> str:
    """The address up to its district (区/县/镇/乡) shows; the street and number do not."""
    if address.endswith(_STARS):
        return address
    match = re.match(r"^(.*?(?:区|县|镇|乡))", address)
    keep = match.group(1) if match else address[: len(address) // 3]
    return keep + _STARS if keep != address else address


# Mainland mobiles (1[3-9] + 9 digits) and ID numbers (area code, a plausible birth date,
# sequence, check character), standing alone in text. The birth date keeps 18-digit bank
# serials and the like, quoted in error details, from being taken for ID numbers.
_PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_ID_NUMBER = re.compile(
    r"(?<![\dA-Za-z])\d{6}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
    r"(?![\dA-Za-z])"
)


def scrub(text: str) -> str:
    """Mask any phone or ID number found in free text (a last line of defence for text
    nobody composed for display, such as exception messages and error details)."""
    if not any(c.isdigit() for c in text):
        return text
    text = _ID_NUMBER.sub(lambda m: mask_id_number(m.group(0)), text)
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)


RULES: Mapping[PersonalKind, Callable[[str], str]] = {
    PersonalKind.NAME: mask_name,
    PersonalKind.PHONE: mask_phone,
    PersonalKind.ID_NUMBER: mask_id_number,
    PersonalKind.ADDRESS: mask_address,
    PersonalKind.BANK_ACCOUNT: mask_bank_account,
    PersonalKind.EMAIL: mask_email,
    PersonalKind.FREE_TEXT: scrub,
}
"""The rule for each kind; every kind has one."""


def mask(kind: PersonalKind, value: str) -> str:
    """``value`` masked as ``kind``; empty stays empty."""
    return RULES[kind](value) if value else value


class ScrubbingFilter(logging.Filter):
    """A logging filter that scrubs phones and ID numbers from every record it passes.

    Log messages should never carry personal data; this catches what arrives inside
    arguments from elsewhere (an exception text quoting a request, say).

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
