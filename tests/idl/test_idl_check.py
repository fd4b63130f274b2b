"""``powerbus idl generate|check`` (the Typer sub-app) and the drift check behind it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from idl_support import COMMITTED_IDL, FIXTURES, PROTOS
from typer.testing import CliRunner

from powerbus.adapters.corba.idl import check_idl, compile_protos
from powerbus.adapters.corba.idl.cli import app
from powerbus.bus.kernel.errors import InvalidArgument


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_check_passes_on_the_committed_idl(runner: CliRunner) -> None:
    result = runner.invoke(app, ["check", "--protos", str(PROTOS), "--idl", str(COMMITTED_IDL)])
    assert result.exit_code == 0, result.output
    assert "matches the protos" in result.stdout


def test_check_fails_with_a_diff_when_the_idl_was_edited(runner: CliRunner, tmp_path: Path) -> None:
    idl = tmp_path / "powerbus.idl"
    shutil.copy(COMMITTED_IDL, idl)
    text = idl.read_text(encoding="utf-8")
    original = next(line for line in text.splitlines() if line.endswith(" string message;"))
    edited = original.replace("message", "text")
    idl.write_text(text.replace(original + "\n", edited + "\n", 1), "utf-8")

    result = runner.invoke(app, ["check", "--protos", str(PROTOS), "--idl", str(idl)])

    assert result.exit_code == 1
    assert f"--- {idl} (committed)" in result.stdout
    assert f"+++ {idl} (generated from the protos)" in result.stdout
    assert f"\n-{edited}\n" in result.stdout
    assert f"\n+{original}\n" in result.stdout
    assert "run `powerbus idl generate`" in result.stderr


def test_check_fails_when_the_idl_is_missing(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["check", "--protos", str(FIXTURES), "--idl", str(tmp_path / "x.idl")]
    )
    assert result.exit_code == 1
    assert "+module google {" in result.stdout


def test_generate_then_check_round_trips(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "idl" / "fixture.idl"
    first = runner.invoke(app, ["generate", "--protos", str(FIXTURES), "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert f"wrote {out}" in first.stdout
    written = out.read_bytes()

    again = runner.invoke(app, ["generate", "--protos", str(FIXTURES), "--out", str(out)])
    assert again.exit_code == 0 and "up to date" in again.stdout
    assert out.read_bytes() == written

    assert check_idl(protos_dir=FIXTURES, idl_path=out) == ""
    checked = runner.invoke(app, ["check", "--protos", str(FIXTURES), "--idl", str(out)])
    assert checked.exit_code == 0, checked.output


def test_a_proto_change_is_drift(runner: CliRunner, tmp_path: Path) -> None:
    protos = tmp_path / "protos"
    shutil.copytree(PROTOS, protos)
    out = tmp_path / "powerbus.idl"
    assert (
        runner.invoke(app, ["generate", "--protos", str(protos), "--out", str(out)]).exit_code == 0
    )
    echo = protos / "powerbus" / "echo" / "v1" / "echo.proto"
    echo.write_text(echo.read_text("utf-8") + "\nmessage Added {\n  string note = 1;\n}\n", "utf-8")

    result = runner.invoke(app, ["check", "--protos", str(protos), "--idl", str(out)])

    assert result.exit_code == 1
    assert "struct Added {" in result.stdout


def test_a_broken_proto_is_reported_with_protocs_message(runner: CliRunner, tmp_path: Path) -> None:
    broken = tmp_path / "protos" / "powerbus" / "bad" / "v1"
    broken.mkdir(parents=True)
    (broken / "bad.proto").write_text(
        'syntax = "proto3";\npackage powerbus.bad.v1;\nmessage Bad { Missing m = 1; }\n', "utf-8"
    )
    with pytest.raises(InvalidArgument) as caught:
        compile_protos(tmp_path / "protos")
    assert caught.value.field == "protos"
    assert "Missing" in caught.value.message and "bad.proto" in caught.value.message

    result = runner.invoke(app, ["generate", "--protos", str(tmp_path / "protos")])
    assert result.exit_code == 2
    assert "protoc failed" in result.stderr


def test_an_empty_protos_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"no \.proto files"):
        compile_protos(tmp_path)


def test_every_command_has_an_example_in_its_help(runner: CliRunner) -> None:
    for command in ([], ["generate"], ["check"]):
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0
        assert "Example: powerbus idl" in result.stdout
