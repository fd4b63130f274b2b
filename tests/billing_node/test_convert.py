"""Tariffs, usage and lines cross the wire unchanged: a random tariff (the engine tests'
hypothesis strategy) survives ``Tariff`` message bytes, as PutTariff/GetTariff carry it."""

from __future__ import annotations

import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings

from powerbus.billing.v1 import billing_pb2
from powerbus.nodes.billing.convert import (
    line_from_record,
    line_to_record,
    tariff_from_proto,
    tariff_to_proto,
    usage_from_quote,
)
from powerbus.nodes.billing.tariff import Tariff, TouPeriod, Usage, load_shipped, quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "billing"))
from test_tariff_roundtrip import tariffs


@settings(max_examples=40, deadline=None)
@given(tariffs())
def test_a_random_tariff_round_trips_through_the_wire(tariff: Tariff) -> None:
    wire = tariff_to_proto(tariff).SerializeToString()
    again = tariff_from_proto(billing_pb2.Tariff.FromString(wire))
    assert again == tariff
    assert tariff_to_proto(again).SerializeToString() == wire


def test_every_shipped_version_round_trips() -> None:
    catalogue = load_shipped()
    for tariff_id in catalogue.ids():
        for version in catalogue.versions(tariff_id):
            assert tariff_from_proto(tariff_to_proto(version)) == version


def test_a_quote_request_becomes_exact_usage_and_lines_survive_the_store() -> None:
    request = billing_pb2.QuoteRequest(
        tariff_id="cn-jiangsu-residential-tou",
        tou_usage=[
            billing_pb2.TouUsage(period=billing_pb2.TOU_PERIOD_PEAK, kwh=300.1),
            billing_pb2.TouUsage(period=billing_pb2.TOU_PERIOD_VALLEY, kwh=120.2),
        ],
        year_to_date_kwh=2600,
    )
    usage = usage_from_quote(request)
    assert usage.tou_kwh == {TouPeriod.PEAK: Decimal("300.1"), TouPeriod.VALLEY: Decimal("120.2")}
    assert usage == Usage(tou_kwh=usage.tou_kwh, year_to_date_kwh=Decimal(2600))
    quote_day = date(2026, 7, 1)
    tariff = load_shipped().version("cn-jiangsu-residential-tou", quote_day)
    bill = quote(tariff, usage, billing_date=quote_day)
    assert tuple(line_from_record(line_to_record(x)) for x in bill.lines) == bill.lines
