"""Small questions about proto fields, asked the same way on every protobuf release.

>>> from powerbus.echo.v1 import echo_pb2
>>> metadata = echo_pb2.EchoReply.DESCRIPTOR.fields_by_name["metadata"]
>>> is_repeated(metadata), is_message(metadata), message_type(metadata).GetOptions().map_entry
(True, True, True)
"""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

__all__ = ["enum_type", "is_message", "is_repeated", "message_type"]


def is_repeated(field: FieldDescriptor) -> bool:
    flag = getattr(field, "is_repeated", None)
    if flag is None:  # protobuf < 5.29 has only the label
        return bool(getattr(field, "label") == FieldDescriptor.LABEL_REPEATED)  # noqa: B009
    return bool(flag)


def is_message(field: FieldDescriptor) -> bool:
    return field.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP)


def message_type(field: FieldDescriptor) -> Descriptor:
    if field.message_type is None:
        raise TypeError(f"{field.full_name} is not a message field")
    return field.message_type


def enum_type(field: FieldDescriptor) -> EnumDescriptor:
    if field.enum_type is None:
        raise TypeError(f"{field.full_name} is not an enum field")
    return field.enum_type
