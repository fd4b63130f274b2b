"""The generated IDL compiles with omniidl, and its Python stubs work with omniORBpy.

The stubs are imported only in child interpreters: they define a top-level ``powerbus``
package that would shadow ours in this process.
"""

from __future__ import annotations

from pathlib import Path

from idl_support import COMMITTED_IDL, omniidl, run_with_stubs


def test_committed_idl_compiles_and_its_stubs_import(tmp_path: Path) -> None:
    compiled = omniidl(COMMITTED_IDL, tmp_path / "stubs")
    assert compiled.returncode == 0, compiled.stderr
    assert compiled.stderr == ""  # no warnings either (CORBA 3 keywords, deprecations)
    script = """
        import omniORB
        import powerbus.echo.v1 as echo
        import powerbus.registry.v1 as registry
        import powerbus__POA.echo.v1 as echo_poa
        import google.protobuf as wkt
        assert hasattr(echo_poa, "Echo") and hasattr(echo, "_objref_Echo")
        for op in ("Echo_", "Expand", "Collect", "Chat", "Record", "Executions"):
            assert hasattr(echo._objref_Echo, op), op
        request = echo.EchoRequest(
            message="hi", payload=b"\\x00\\x01", delay=wkt.Duration(1, 500), fail_code=0
        )
        back = omniORB.cdrUnmarshal(
            echo._tc_EchoRequest, omniORB.cdrMarshal(echo._tc_EchoRequest, request)
        )
        assert back.message == "hi" and back.payload == b"\\x00\\x01" and back.delay.nanos == 500
        assert hasattr(registry, "_objref_Registry")
        print("ok")
    """
    done = run_with_stubs(tmp_path / "stubs", script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_fixture_idl_compiles_without_warnings(tmp_path: Path, fixture_idl: str) -> None:
    idl = tmp_path / "fixture.idl"
    idl.write_text(fixture_idl, encoding="utf-8")
    compiled = omniidl(idl, tmp_path / "stubs")
    assert compiled.returncode == 0, compiled.stderr
    assert compiled.stderr == ""


def test_fixture_stubs_carry_the_tricky_shapes(tmp_path: Path, fixture_idl: str) -> None:
    idl = tmp_path / "fixture.idl"
    idl.write_text(fixture_idl, encoding="utf-8")
    assert omniidl(idl, tmp_path / "stubs").returncode == 0
    script = """
        import google.protobuf
        import omniORB
        import powerbus.fixture.v1 as v1
        import powerbus.fixture.a as a

        def round_trip(tc, value):
            return omniORB.cdrUnmarshal(tc, omniORB.cdrMarshal(tc, value))

        # Recursion through a sequence and through sequence<T, 1>.
        tree = v1.Tree("root", [v1.Tree("leaf", [])])
        assert round_trip(v1._tc_Tree, tree).children[0].label == "leaf"
        chain = v1.Chain(1, [v1.Chain(2, [])])
        assert round_trip(v1._tc_Chain, chain).next[0].value == 2

        # Mutual recursion cut by an any that carries the struct.
        inner = v1.Expr(v1.Expr_Kind(literal=7))
        outer = v1.Expr(v1.Expr_Kind(negate=CORBA.Any(v1._tc_Expr, inner)))
        assert round_trip(v1._tc_Expr, outer).kind.negate.value().kind.literal == 7
        # A oneof with nothing set: discriminator 0, no member.
        assert round_trip(v1._tc_Expr, v1.Expr(v1.Expr_Kind(0, None))).kind._d == 0

        # Keyword-named members keep their identifiers (the IDL escape is not a rename).
        names = v1.Module.__init__.__code__.co_varnames
        assert {"interface", "context", "Object", "module_", "hidden"} <= set(names), names

        # Maps are sequences of entries; enums of nested enums carry their prefix.
        outer = v1.Outer(
            middle=v1.Outer_Middle(v1.Outer_Middle_Inner(3), v1.Outer_Middle_SHADE_DARK),
            kind=v1.Outer_Kind_(shade=v1.Outer_Middle_SHADE_DARK),
            maybe=0,
            readings=[v1.Outer_ReadingsEntry("m1", v1.Reading(v1.Reading_LEVEL_HIGH, 1.5, "", ""))],
            levels=[v1.Outer_LevelsEntry(9, v1.Alarm_LEVEL_HIGH)],
            blobs=[v1.Outer_BlobsEntry(True, b"x")],
            chunks=[b"a", b"b"],
            sparse=[v1.SPARSE_MINUS],
            inners=[],
            nothing=google.protobuf.Empty(0),
        )
        back = round_trip(v1._tc_Outer, outer)
        assert back.readings[0].value.kwh == 1.5 and back.levels[0].value == v1.Alarm_LEVEL_HIGH

        # The operation named like its interface, and streaming as sequences.
        for op in ("Echo_", "ECHO__", "Expand", "Collect", "Chat", "Ping"):
            assert hasattr(v1._objref_Echo, op), op
        assert hasattr(v1._objref_Interface, "Oneway")
        assert hasattr(a._objref_Chain, "Follow")
        print("ok")
    """
    done = run_with_stubs(tmp_path / "stubs", script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
