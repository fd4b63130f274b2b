"""Masking the personal fields of protobuf messages, as their protos mark them.

A field marked ``[(powerbus.common.v1.personal) = PERSONAL_DATA_PHONE]`` is masked by the
rule of its kind (:mod:`powerbus.bus.kernel.masking`), wherever it sits: nested messages,
repeated fields, map values, and messages packed in ``google.protobuf.Any`` (an event's
payload) whose type the message's descriptor pool knows. The marks are read from the
descriptors, so messages of a schema only registered at run time (the bus's schema pool,
a reflection client's) are masked like generated ones.

::

    shown = masked(customer)                        # a copy; customer is unchanged
    masked_json(view, keep={PersonalKind.ADDRESS})  # an agent may see addresses

Whether a message type holds personal data anywhere below it is worked out once per type,
so masking a message that has none costs one cached look-up.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from typing import Any, TypeVar, cast

from google.protobuf import any_pb2, descriptor_pool, json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass

from powerbus.bus.kernel.masking import PersonalKind, mask
from powerbus.common.v1 import options_pb2

__all__ = ["has_personal_data", "kind_of", "mask_in_place", "masked", "masked_json"]

M = TypeVar("M", bound=Message)

_ANY = "google.protobuf.Any"
_KINDS = {
    options_pb2.PERSONAL_DATA_NAME: PersonalKind.NAME,
    options_pb2.PERSONAL_DATA_PHONE: PersonalKind.PHONE,
    options_pb2.PERSONAL_DATA_ID_NUMBER: PersonalKind.ID_NUMBER,
    options_pb2.PERSONAL_DATA_ADDRESS: PersonalKind.ADDRESS,
    options_pb2.PERSONAL_DATA_BANK_ACCOUNT: PersonalKind.BANK_ACCOUNT,
    options_pb2.PERSONAL_DATA_EMAIL: PersonalKind.EMAIL,
    options_pb2.PERSONAL_DATA_FREE_TEXT: PersonalKind.FREE_TEXT,
}
# Bounded, not weak: the bus's schema pool is rebuilt when registrations change, and the
# old pool's descriptors may stay cached until pushed out.
_CACHE = 4096


def kind_of(field: FieldDescriptor) -> PersonalKind | None:
    """The kind of personal data ``field`` is marked as holding, or None.

    >>> from powerbus.crm.v1 import crm_pb2
    >>> kind_of(crm_pb2.Customer.DESCRIPTOR.fields_by_name["phones"])
    <PersonalKind.PHONE: 'phone'>
    >>> kind_of(crm_pb2.Customer.DESCRIPTOR.fields_by_name["customer_id"]) is None
    True
    """
    return _kind_of(field)


@functools.lru_cache(maxsize=_CACHE)
def _kind_of(field: FieldDescriptor) -> PersonalKind | None:
    options = field.GetOptions()
    if not options.HasExtension(options_pb2.personal):
        return None
    value = options.Extensions[options_pb2.personal]
    # An unspecified or newer kind this code does not know is masked as a whole name
    # would be (first and last character): shown too little rather than too much.
    return _KINDS.get(value, PersonalKind.NAME)


def has_personal_data(descriptor: Descriptor) -> bool:
    """Whether a message of this type can hold personal data: a marked field anywhere
    below it, or an ``Any`` (whose content is only known per message)."""
    return _has_personal_data(descriptor)


@functools.lru_cache(maxsize=_CACHE)
def _has_personal_data(descriptor: Descriptor) -> bool:
    seen: set[str] = set()

    def visit(d: Descriptor) -> bool:
        if d.full_name == _ANY:
            return True
        if d.full_name in seen:  # recursive types: the first visit answers for them
            return False
        seen.add(d.full_name)
        for field in d.fields:
            if _kind_of(field) is not None:
                return True
            if field.message_type is not None and visit(field.message_type):
                return True
        return False

    return visit(descriptor)


@functools.lru_cache(maxsize=_CACHE)
def _plan(descriptor: Descriptor) -> frozenset[int]:
    """Numbers of the fields of ``descriptor`` worth a look: marked, or leading to a mark."""
    return frozenset(
        f.number
        for f in descriptor.fields
        if _kind_of(f) is not None
        or (f.message_type is not None and _has_personal_data(f.message_type))
    )


def mask_in_place(message: Message, *, keep: Collection[PersonalKind] = ()) -> None:
    """Mask every personal field of ``message`` (and below) in place, but those whose kind
    is in ``keep`` (what the audience may see).

    A marked field that is not a string (say an integer account number) is cleared: it
    has no masked form to show.
    """
    descriptor = message.DESCRIPTOR
    if not _has_personal_data(descriptor):
        return
    if descriptor.full_name == _ANY:
        # Typed as the generated Any; a dynamic pool's Any has the same fields.
        _mask_any(cast(any_pb2.Any, message), keep)
        return
    plan = _plan(descriptor)
    # Only fields that are set: an unset message field is not created by looking at it.
    for field, _value in message.ListFields():
        if field.number not in plan or field.is_extension:
            continue
        kind = _kind_of(field)
        if kind is not None and kind in keep:
            continue
        if _is_map(field):
            _mask_map(message, field, kind, keep)
        elif field.is_repeated:
            _mask_repeated(message, field, kind, keep)
        else:
            _mask_single(message, field, kind, keep)


def masked(message: M, *, keep: Collection[PersonalKind] = ()) -> M:
    """A masked copy of ``message``; ``message`` itself is unchanged.

    >>> from powerbus.crm.v1 import crm_pb2
    >>> c = crm_pb2.Customer(customer_id="C1", name="张三丰", phones=["13812341234"])
    >>> shown = masked(c)
    >>> shown.name, list(shown.phones), shown.customer_id, c.name
    ('张*丰', ['138****1234'], 'C1', '张三丰')
    """
    if not _has_personal_data(message.DESCRIPTOR):
        return message
    copy = type(message)()
    copy.CopyFrom(message)
    mask_in_place(copy, keep=keep)
    return copy


def masked_json(message: Message, *, keep: Collection[PersonalKind] = ()) -> dict[str, Any]:
    """``message`` masked, as protobuf's JSON mapping (proto field names, UTF-8 text).

    Raises ``TypeError`` for an ``Any`` whose type is not in the message's pool, as
    :func:`google.protobuf.json_format.MessageToDict` does.
    """
    shown = masked(message, keep=keep)
    return json_format.MessageToDict(
        shown, preserving_proto_field_name=True, descriptor_pool=_pool_of(message)
    )


# One field of each shape.


def _mask_single(
    message: Message,
    field: FieldDescriptor,
    kind: PersonalKind | None,
    keep: Collection[PersonalKind],
) -> None:
    if kind is None:
        mask_in_place(getattr(message, field.name), keep=keep)
    elif field.type == FieldDescriptor.TYPE_STRING:
        setattr(message, field.name, mask(kind, getattr(message, field.name)))
    else:
        message.ClearField(field.name)


def _mask_repeated(
    message: Message,
    field: FieldDescriptor,
    kind: PersonalKind | None,
    keep: Collection[PersonalKind],
) -> None:
    values = getattr(message, field.name)
    if kind is None:
        for item in values:
            mask_in_place(item, keep=keep)
    elif field.type == FieldDescriptor.TYPE_STRING:
        shown = [mask(kind, v) for v in values]
        del values[:]
        values.extend(shown)
    else:
        message.ClearField(field.name)


def _mask_map(
    message: Message,
    field: FieldDescriptor,
    kind: PersonalKind | None,
    keep: Collection[PersonalKind],
) -> None:
    """A mark on a map field applies to its values; a map of messages is walked."""
    entries = getattr(message, field.name)
    value_field = cast(Descriptor, field.message_type).fields_by_name["value"]
    if value_field.message_type is not None:
        if kind is not None and kind not in keep:
            message.ClearField(field.name)  # messages have no masked form
            return
        for key in list(entries):
            mask_in_place(entries[key], keep=keep)
    elif kind is not None and value_field.type == FieldDescriptor.TYPE_STRING:
        for key in list(entries):
            entries[key] = mask(kind, entries[key])
    elif kind is not None:
        message.ClearField(field.name)


def _mask_any(message: any_pb2.Any, keep: Collection[PersonalKind]) -> None:
    """Unpack, mask, repack; a type the pool does not know is left as it is (its bytes are
    shown nowhere as text: JSON of it fails)."""
    type_url = message.type_url
    pool = _pool_of(message)
    name = type_url.rpartition("/")[2]
    try:
        descriptor = pool.FindMessageTypeByName(name)
    except KeyError:
        if pool is descriptor_pool.Default():
            return
        try:
            descriptor = descriptor_pool.Default().FindMessageTypeByName(name)
        except KeyError:
            return
    if not _has_personal_data(descriptor):
        return
    inner = GetMessageClass(descriptor)()
    try:
        inner.ParseFromString(message.value)
    except DecodeError:
        message.value = b""  # undecodable: nothing can be told apart in it
        return
    mask_in_place(inner, keep=keep)
    message.value = inner.SerializeToString(deterministic=True)


def _is_map(field: FieldDescriptor) -> bool:
    return bool(
        field.is_repeated
        and field.message_type is not None
        and field.message_type.GetOptions().map_entry
    )


def _pool_of(message: Message) -> descriptor_pool.DescriptorPool:
    """The pool ``message``'s type came from: the default one for generated code, the
    schema's for a dynamic message."""
    return cast(descriptor_pool.DescriptorPool, message.DESCRIPTOR.file.pool)
