"""The personal-data masking rules, kind by kind, and the walk over the fields the protos
mark personal: nested, repeated, maps, ``Any``, recursive types, dynamic descriptor pools."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import given, settings
from hypothesis import strategies as st

from powerbus.billing.v1 import billing_pb2
from powerbus.bus.kernel.descriptors import descriptor_set_for
from powerbus.bus.kernel.masking import RULES, PersonalKind, mask, scrub
from powerbus.bus.kernel.personal_data import (
    has_personal_data,
    kind_of,
    mask_in_place,
    masked,
    masked_json,
)
from powerbus.common.v1 import common_pb2, options_pb2
from powerbus.crm.v1 import crm_pb2
from powerbus.echo.v1 import echo_pb2
from powerbus.events.v1 import events_pb2
from powerbus.metering.v1 import metering_pb2
from powerbus.payment.v1 import payment_pb2
from powerbus.policy.v1 import policy_pb2
from powerbus.registry.v1 import registry_pb2
from powerbus.traffic.v1 import traffic_pb2

PHONE, ID_NUMBER = "13812341234", "11010519491231002X"
mobiles = st.from_regex(r"\A1[3-9]\d{9}\Z")
texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


# -- the rules, one kind at a time ---------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "shown"),
    [
        (PersonalKind.NAME, "张三丰", "张*丰"),
        (PersonalKind.NAME, "李四", "李*"),
        (PersonalKind.PHONE, PHONE, "138****1234"),
        (PersonalKind.PHONE, "0571-8888 6666", "057*****6666"),
        (PersonalKind.ID_NUMBER, ID_NUMBER, "*" * 14 + "002X"),
        (PersonalKind.ADDRESS, "杭州市西湖区文三路123号5幢201室", "杭州市西湖区****"),
        (PersonalKind.BANK_ACCOUNT, "6222 0212 3456 7890 123", "*" * 15 + "0123"),
        (PersonalKind.EMAIL, "zhangsan@example.com", "z***@example.com"),
        (
            PersonalKind.FREE_TEXT,
            f"请回电 {PHONE}, 证件 {ID_NUMBER}",
            "请回电 138****1234, 证件 " + "*" * 14 + "002X",
        ),
        (PersonalKind.NAME, "", ""),
    ],
)
def test_each_kind_is_masked_by_its_rule(kind: PersonalKind, value: str, shown: str) -> None:
    assert mask(kind, value) == shown


def test_every_kind_of_the_proto_enum_has_a_rule() -> None:
    wire = {v.name for v in options_pb2.PersonalData.DESCRIPTOR.values} - {
        "PERSONAL_DATA_UNSPECIFIED"
    }
    assert wire == {f"PERSONAL_DATA_{k.name}" for k in PersonalKind}
    assert set(RULES) == set(PersonalKind)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(PersonalKind), value=texts | mobiles)
def test_masking_twice_is_masking_once(kind: PersonalKind, value: str) -> None:
    # A node masks its view, the bus masks what it shows of it: the same text either way.
    once = mask(kind, value)
    assert mask(kind, once) == once


@settings(max_examples=200, deadline=None)
@given(phone=mobiles, before=texts, after=texts)
def test_no_mobile_survives_scrubbing_or_phone_masking(phone: str, before: str, after: str) -> None:
    assert phone not in mask(PersonalKind.PHONE, phone)
    # Free text: a number glued to other digits is another number, not this phone.
    text = f"{before} {phone} {after}"
    assert phone not in scrub(text) or phone in before or phone in after


def test_scrub_leaves_long_numbers_that_are_not_id_numbers() -> None:
    # An 18-digit bank serial has no birth date in it: error details quoting one stay read-
    # able; a real ID number inside the same text is masked.
    serial = "202405010000000123"
    assert scrub(f"serial {serial} for {ID_NUMBER}") == f"serial {serial} for " + "*" * 14 + "002X"


# -- the walk over generated messages ------------------------------------------------------


def person(name: str = "张三丰", phone: str = PHONE) -> crm_pb2.Customer:
    return crm_pb2.Customer(
        customer_id="C00000001",
        name=name,
        phones=[phone, "13900001111"],
        email="zhangsan@example.com",
        address="杭州市西湖区文三路123号",
        account_ids=["3300000001"],
    )


def test_marked_fields_are_masked_and_the_rest_is_untouched() -> None:
    view = crm_pb2.CustomerView(customer=person())
    view.accounts.add(
        account_id="3300000001", name="张三丰", service_address="杭州市西湖区文三路123号"
    )
    ticket = view.open_tickets.add(
        ticket_id="T1", title=f"请回电 {PHONE}", site_address="西湖区1号"
    )
    ticket.history.add(note=f"客户 {ID_NUMBER} 来电", actor="agent-7")
    view.readings.add().recent_events.add(reason=f"tamper, owner {PHONE}")

    shown = masked(view)

    assert view.customer.name == "张三丰"  # the original is left as it was
    c = shown.customer
    assert (c.name, list(c.phones), c.email) == (
        "张*丰",
        ["138****1234", "139****1111"],
        "z***@example.com",
    )
    assert c.address == "杭州市西湖区****"
    assert (c.customer_id, list(c.account_ids)) == ("C00000001", ["3300000001"])
    assert shown.accounts[0].name == "张*丰"
    assert shown.accounts[0].account_id == "3300000001"
    assert shown.open_tickets[0].title == "请回电 138****1234"
    assert shown.open_tickets[0].history[0].note == "客户 " + "*" * 14 + "002X 来电"
    assert shown.open_tickets[0].history[0].actor == "agent-7"
    assert shown.readings[0].recent_events[0].reason == "tamper, owner 138****1234"
    # Unset message fields stay unset: looking for personal data creates nothing.
    assert not shown.HasField("segment") and not shown.HasField("total_due")


def test_kinds_in_keep_are_shown_as_they_are() -> None:
    shown = masked(person(), keep={PersonalKind.ADDRESS})
    assert shown.address == "杭州市西湖区文三路123号"
    assert shown.name == "张*丰"


def test_messages_without_personal_data_are_returned_as_they_are() -> None:
    request = echo_pb2.EchoRequest(message=PHONE)
    assert masked(request) is request  # nothing marked: no copy made
    assert not has_personal_data(billing_pb2.Bill.DESCRIPTOR)
    assert has_personal_data(crm_pb2.GetCustomerViewRequest.DESCRIPTOR) is False
    assert has_personal_data(crm_pb2.CustomerView.DESCRIPTOR)
    assert has_personal_data(events_pb2.Envelope.DESCRIPTOR)  # its payload is an Any


def test_an_event_payload_packed_in_any_is_masked() -> None:
    envelope = events_pb2.Envelope(topic="crm.customer.changed", source="crm-1", sequence=7)
    envelope.payload.Pack(person())

    data = masked_json(envelope)

    text = json.dumps(data, ensure_ascii=False)
    assert PHONE not in text and "张三丰" not in text
    assert data["payload"]["@type"].endswith("powerbus.crm.v1.Customer")
    assert data["payload"]["name"] == "张*丰"
    assert data["topic"] == "crm.customer.changed"


def test_an_any_of_an_unknown_type_is_left_alone_and_undecodable_bytes_dropped() -> None:
    unknown = any_pb2.Any(type_url="type.googleapis.com/x.y.Unknown", value=b"\x0a\x03abc")
    mask_in_place(unknown)
    assert unknown.value == b"\x0a\x03abc"
    broken = any_pb2.Any(type_url="type.googleapis.com/powerbus.crm.v1.Customer", value=b"\xff\xff")
    mask_in_place(broken)
    assert broken.value == b""


# Field names that usually hold personal data, and the ones among them that do not here.
PERSONAL_LOOKING = re.compile(
    r"(^|_)(name|names|phones?|mobile|email|address|id_number|payer\w*|bank_account|card_no)$"
)
NOT_PERSONAL = {
    "powerbus.billing.v1.GovernmentFund.name",  # a fund's name
    "powerbus.billing.v1.Tariff.name",
    "powerbus.billing.v1.BillLine.fund_name",
    "powerbus.common.v1.MeterRef.address",  # a device's address (modbus://…)
    "powerbus.events.v1.NodeStatusChanged.address",  # a node's HOST:PORT
    "powerbus.metering.v1.Meter.address",
    "powerbus.metering.v1.ListMetersRequest.address",
    "powerbus.metering.v1.EndDeviceEventType.name",  # an event's short name
    "powerbus.metering.v1.EndDeviceEventDetail.name",
    "powerbus.metering.v1.ListEndDeviceEventsRequest.names",
    "powerbus.payment.v1.FetchStatementResponse.file_name",
    "powerbus.registry.v1.RegisterRequest.address",
    "powerbus.registry.v1.Node.address",
}
DOMAINS = (
    billing_pb2,
    common_pb2,
    crm_pb2,
    echo_pb2,
    events_pb2,
    metering_pb2,
    payment_pb2,
    policy_pb2,
    registry_pb2,
    traffic_pb2,
)


def all_fields(descriptor: Descriptor) -> Iterator[FieldDescriptor]:
    yield from descriptor.fields
    for nested in descriptor.nested_types:
        yield from all_fields(nested)


def test_every_field_named_like_personal_data_is_marked_or_known_not_to_be() -> None:
    # A new `payer_name` or `phone` field that nobody marked would be shown unmasked.
    unmarked = sorted(
        f.full_name
        for module in DOMAINS
        for message in module.DESCRIPTOR.message_types_by_name.values()
        for f in all_fields(message)
        if f.type == FieldDescriptor.TYPE_STRING
        and PERSONAL_LOOKING.search(f.name)
        and kind_of(f) is None
    )
    assert unmarked == sorted(NOT_PERSONAL)


# -- a schema known only at run time, as the bus's schema pool holds it --------------------

_PERSON_PROTO = "personal_test/person.proto"


def _field(
    message: descriptor_pb2.DescriptorProto,
    name: str,
    number: int,
    kind: int = descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    *,
    repeated: bool = False,
    type_name: str = "",
    personal: int = 0,
) -> None:
    f = message.field.add(name=name, number=number, type=kind)
    if type_name:
        f.type_name = type_name
    f.label = f.LABEL_REPEATED if repeated else f.LABEL_OPTIONAL
    if personal:
        f.options.Extensions[options_pb2.personal] = personal  # type: ignore[index]


def dynamic_person_pool() -> descriptor_pool.DescriptorPool:
    """``Person`` with a name, phones, a map of phones, a map of relatives (recursive), a
    spouse (recursive), a marked bytes field and an ``Any``, in a pool of its own."""
    file = descriptor_pb2.FileDescriptorProto(
        name=_PERSON_PROTO,
        package="personal_test",
        syntax="proto3",
        dependency=["google/protobuf/any.proto", "powerbus/common/v1/options.proto"],
    )
    person_type = file.message_type.add(name="Person")
    msg = descriptor_pb2.FieldDescriptorProto
    _field(person_type, "ref", 1)
    _field(person_type, "name", 2, personal=options_pb2.PERSONAL_DATA_NAME)
    _field(person_type, "phones", 3, repeated=True, personal=options_pb2.PERSONAL_DATA_PHONE)
    for map_name, value_type, type_name, personal in (
        ("contacts", msg.TYPE_STRING, "", options_pb2.PERSONAL_DATA_PHONE),
        ("relatives", msg.TYPE_MESSAGE, ".personal_test.Person", 0),
    ):
        entry = person_type.nested_type.add(name=f"{map_name.title()}Entry")
        entry.options.map_entry = True
        _field(entry, "key", 1)
        _field(entry, "value", 2, value_type, type_name=type_name)
        _field(
            person_type,
            map_name,
            4 if map_name == "contacts" else 5,
            msg.TYPE_MESSAGE,
            repeated=True,
            type_name=f".personal_test.Person.{entry.name}",
            personal=personal,
        )
    _field(person_type, "spouse", 6, msg.TYPE_MESSAGE, type_name=".personal_test.Person")
    _field(person_type, "card", 7, msg.TYPE_BYTES, personal=options_pb2.PERSONAL_DATA_BANK_ACCOUNT)
    _field(person_type, "extra", 8, msg.TYPE_MESSAGE, type_name=".google.protobuf.Any")
    pool = descriptor_pool.DescriptorPool()
    for dependency in descriptor_set_for(options_pb2.DESCRIPTOR, any_pb2.DESCRIPTOR).file:
        pool.Add(dependency)
    pool.Add(file)
    return pool


POOL = dynamic_person_pool()
Person = GetMessageClass(POOL.FindMessageTypeByName("personal_test.Person"))


@st.composite
def people(draw: st.DrawFn, depth: int = 2) -> tuple[Message, list[str]]:
    """A random Person tree, and every phone and name put into it."""
    secrets: list[str] = []
    p = Person(ref=draw(st.from_regex(r"\AR\d{1,4}\Z")))
    name = draw(st.sampled_from(["张三丰", "欧阳娜娜", "李四光"]))
    p.name = name
    secrets.append(name)
    for phone in draw(st.lists(mobiles, max_size=3)):
        p.phones.append(phone)
        secrets.append(phone)
    for key, phone in draw(st.dictionaries(st.sampled_from(["home", "work"]), mobiles)).items():
        p.contacts[key] = phone
        secrets.append(phone)
    p.card = b"6222021234567890"
    if depth > 0:
        for key in draw(st.lists(st.sampled_from(["mother", "son"]), max_size=2, unique=True)):
            child, more = draw(people(depth - 1))
            p.relatives[key].CopyFrom(child)
            secrets += more
        if draw(st.booleans()):
            spouse, more = draw(people(depth - 1))
            p.spouse.CopyFrom(spouse)
            secrets += more
        if draw(st.booleans()):
            packed, more = draw(people(depth - 1))
            p.extra.Pack(packed)
            secrets += more
    return p, secrets


def refs(p: Message) -> list[str]:
    return sorted(
        re.findall(r'"ref": "(R\d+)"', json_format.MessageToJson(p, descriptor_pool=POOL))
    )


@settings(max_examples=60, deadline=None)
@given(tree=people())
def test_no_name_or_phone_survives_anywhere_in_a_dynamic_message(
    tree: tuple[Message, list[str]],
) -> None:
    original, secrets = tree
    data = masked_json(original)
    text = json.dumps(data, ensure_ascii=False)
    assert [s for s in secrets if s in text] == []
    assert "card" not in data  # a marked field with no masked form is dropped
    # Nothing else changed: every reference is still there, in the copy and the original.
    shown = masked(original)
    assert refs(shown) == refs(original)
    assert original.name in secrets  # the original is untouched


def test_a_dynamic_map_of_phones_keeps_its_keys() -> None:
    p = Person(ref="R1")
    p.contacts["home"] = PHONE
    p.relatives["son"].name = "张小明"
    shown = masked(p)
    assert dict(shown.contacts) == {"home": "138****1234"}
    assert shown.relatives["son"].name == "张*明"
