"""Proto messages <-> IDL structs, driven only by descriptors, names and the stubs.

The fixture protos of tests/idl hold every tricky shape (recursion cut by any, sequence<T,1>,
unions with message, enum and bytes cases, maps with message and enum values, sparse and
negative enum numbers, keyword-named fields, well-known types); each is converted to its
IDL struct, marshalled to CDR and back, and converted back to an equal message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from corba_support import FIXTURES
from google.protobuf import descriptor_pool
from google.protobuf.descriptor_pb2 import FileDescriptorSet
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from powerbus.adapters.corba.codec import IdlCodec
from powerbus.adapters.corba.idl import compile_protos, generate_idl, idl_names
from powerbus.adapters.corba.schema import CorbaSchema
from powerbus.adapters.corba.stubs import load_stubs
from powerbus.bus.kernel.errors import InvalidArgument


class Fixture:
    def __init__(self, fds: FileDescriptorSet, codec: IdlCodec) -> None:
        self.pool = descriptor_pool.DescriptorPool()
        for file in fds.file:
            self.pool.Add(file)
        self.codec = codec

    def new(self, message: str, /, **fields: Any) -> Message:
        return GetMessageClass(self.pool.FindMessageTypeByName(f"powerbus.fixture.v1.{message}"))(
            **fields
        )

    def round_trip(self, message: Message) -> Message:
        codec = self.codec.message(message.DESCRIPTOR)
        return codec.to_proto(codec.to_idl(message))


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory, stub_cache: Path) -> Fixture:
    fds = compile_protos(FIXTURES)
    idl = tmp_path_factory.mktemp("fixture-idl") / "fixture.idl"
    idl.write_text(generate_idl(fds), encoding="utf-8")
    load_stubs(idl, cache_dir=stub_cache)
    return Fixture(fds, IdlCodec(names=idl_names(fds)))


def test_recursion_through_a_oneof_is_carried_by_any(fixture: Fixture) -> None:
    expr = fixture.new("Expr")
    expr.binary.op = "+"
    expr.binary.left.literal = 2
    expr.binary.right.negate.literal = 3
    assert fixture.round_trip(expr) == expr
    struct = fixture.codec.message(expr.DESCRIPTOR).to_idl(expr)
    assert struct.kind._d == 3  # the union's discriminator is the proto field number
    assert struct.kind._v.left.value().kind._v == 2


def test_an_unset_oneof_and_an_unset_recursive_field(fixture: Fixture) -> None:
    assert fixture.round_trip(fixture.new("Expr")) == fixture.new("Expr")
    binary = fixture.new("BinOp", op="-")  # left and right unset: anys holding nothing
    assert fixture.round_trip(binary) == binary
    assert not fixture.round_trip(binary).HasField("left")


def test_self_recursion_natively_and_as_a_bounded_sequence(fixture: Fixture) -> None:
    tree = fixture.new("Tree", label="root")
    tree.children.add(label="a").children.add(label="a1")
    tree.children.add(label="b")
    assert fixture.round_trip(tree) == tree
    chain = fixture.new("Chain", value=1)
    chain.next.value = 2
    chain.next.next.SetInParent()  # present but empty: still one element of Chain<1>
    back = fixture.round_trip(chain)
    assert back == chain and back.next.HasField("next")


def test_maps_repeated_cuts_and_well_known_types(fixture: Fixture) -> None:
    root = fixture.new("Dir", name="/")
    root.entries["etc"].name = "etc"
    root.entries["etc"].entries["hosts"].name = "hosts"
    assert fixture.round_trip(root) == root

    ping = fixture.new("Ping")
    ping.pong.pings.add().pong.pings.add()  # an empty Ping in an any of the AnySeq
    ping.pong.pings.add()
    assert fixture.round_trip(ping) == ping

    everything = fixture.new("Everything")
    everything.any.type_url = "type.googleapis.com/x"
    everything.any.value = b"\x08\x01"
    everything.struct.fields["k"].string_value = "v"
    everything.struct.fields["n"].struct_value.fields["inner"].number_value = 1.5
    everything.value.list_value.values.add().bool_value = True
    everything.at.seconds = 1_700_000_000
    everything.took.nanos = 5
    everything.name.value = "名"
    everything.count.value = -7
    everything.mask.paths.append("a.b")
    everything.history.add(seconds=1)
    everything.chains.add(value=9)
    assert fixture.round_trip(everything) == everything


def test_unions_of_every_case_kind_maps_enums_and_optional(fixture: Fixture) -> None:
    for kind in ({"text": "t"}, {"raw": b"\x00\xff"}, {"shade": 1}):
        outer = fixture.new("Outer", **kind)
        assert fixture.round_trip(outer) == outer
    outer = fixture.new("Outer", maybe=4, chunks=[b"a", b""], sparse=[0, 5, -1])
    outer.custom.label = ""  # a message member set to its default is still the one set
    outer.readings["r"].SetInParent()
    outer.levels[-3] = 1
    outer.blobs[True] = b"yes"
    outer.middle.inner.depth = 3
    back = fixture.round_trip(outer)
    assert back == outer
    assert back.WhichOneof("kind") == "custom"


def test_keyword_fields_keep_their_values(fixture: Fixture) -> None:
    module = fixture.new("Module", interface="i", module="m", Object=7, out="o", map=9, _hidden=-1)
    setattr(module, "in", True)
    module.context = "c"
    assert fixture.round_trip(module) == module


def test_idl_carries_no_presence_so_defaults_arrive_unset(fixture: Fixture) -> None:
    outer = fixture.new("Outer")
    outer.middle.SetInParent()  # present, but every member default
    outer.maybe = 0  # proto3 optional set to its default
    back = fixture.round_trip(outer)
    assert not back.HasField("middle")
    assert not back.HasField("maybe")


def test_an_enum_number_the_idl_cannot_say_is_refused(fixture: Fixture) -> None:
    outer = fixture.new("Outer", sparse=[42])
    with pytest.raises(InvalidArgument, match=r"powerbus\.fixture\.v1\.Sparse has no value 42"):
        fixture.codec.message(outer.DESCRIPTOR).to_idl(outer)


def test_the_installed_schema_gives_the_idl_of_the_protos(stub_cache: Path) -> None:
    # The drift check (tests/idl) keeps idl/powerbus.idl equal to this text too.
    schema = CorbaSchema.installed()
    assert schema.idl == generate_idl(compile_protos(FIXTURES.parents[2] / "protos"))
    interfaces = {i.scoped_name: i for i in schema.interfaces()}
    echo = interfaces["::powerbus::echo::v1::Echo"]
    assert [op.name for op in echo.operations][:2] == ["Echo_", "Expand"]
    assert schema.exceptions == {
        "NotFound": "::powerbus::NotFound",
        "Conflict": "::powerbus::Conflict",
        "FailedPrecondition": "::powerbus::FailedPrecondition",
    }
    stubs = schema.load_stubs(cache_dir=stub_cache)
    assert stubs.package.startswith("_pbcorba_")
    assert "powerbus" not in {m.split(".")[0] for m in stubs.modules}
