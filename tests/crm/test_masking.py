"""The masking rules: names, phones, ID numbers, emails, addresses, free text and logs."""

from __future__ import annotations

import logging

import pytest

from powerbus.nodes.crm.masking import (
    ScrubbingFilter,
    mask_address,
    mask_email,
    mask_id_number,
    mask_name,
    mask_phone,
    scrub,
)


@pytest.mark.parametrize(
    ("name", "masked"),
    [("张三", "张*"), ("张三丰", "张*丰"), ("欧阳娜娜", "欧**娜"), ("张", "张"), ("", "")],
)
def test_names_keep_first_and_last(name: str, masked: str) -> None:
    assert mask_name(name) == masked


@pytest.mark.parametrize(
    ("phone", "masked"),
    [("13812341234", "138****1234"), ("138-1234-1234", "138****1234"), ("88886666", "****6666")],
)
def test_phones(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


def test_id_numbers_show_only_the_last_four() -> None:
    assert mask_id_number("11010519491231002X") == "*" * 14 + "002X"


def test_emails_and_addresses() -> None:
    assert mask_email("zhangsan@example.com") == "z***@example.com"
    assert mask_address("杭州市西湖区文三路123号5幢201室") == "杭州市西湖区****"


def test_scrub_finds_numbers_in_free_text_but_not_inside_longer_ids() -> None:
    text = "客户13812341234来电, 证件11010519491231002X, 户号3300000001, 表号130000000001234"
    assert scrub(text) == (
        "客户138****1234来电, 证件**************002X, 户号3300000001, 表号130000000001234"
    )


def test_filter_scrubs_log_records(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("powerbus.nodes.crm.test-filter")
    scrubber = ScrubbingFilter()
    logger.addFilter(scrubber)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info("caller %s id %s", "13812341234", "11010519491231002X")
    finally:
        logger.removeFilter(scrubber)
    assert caplog.messages == ["caller 138****1234 id **************002X"]
