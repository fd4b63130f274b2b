"""The command line of the CORBA pieces: kind options of `powerbus node`, `powerbus sim`."""

from __future__ import annotations

from typer.testing import CliRunner

from powerbus.bus.cli import app

BUS = ["--bus", "127.0.0.1:1", "--id", "x-1"]


def test_a_kind_rejects_options_it_does_not_take() -> None:
    result = CliRunner().invoke(app, ["node", "corba-gateway", *BUS, "--ior-fiel", "x.json"])
    assert result.exit_code == 2
    assert "unknown option(s) --ior-fiel; this kind takes" in result.stderr
    assert "--ior-file" in result.stderr and "--naming" in result.stderr


def test_a_kind_without_options_says_so() -> None:
    result = CliRunner().invoke(app, ["node", "echo", *BUS, "--naming", "corbaloc::h:1/N"])
    assert result.exit_code == 2
    assert "kind 'echo' takes no option --naming" in result.stderr


def test_the_legacy_adapter_needs_to_know_where_the_cis_is() -> None:
    result = CliRunner().invoke(app, ["node", "legacy-cis", *BUS])
    assert result.exit_code == 2
    assert "give exactly one of --ior-file and --naming" in result.stderr
    both = CliRunner().invoke(
        app, ["node", "legacy-cis", *BUS, "--ior-file", "a.json", "--naming=corbaloc::h:1/N"]
    )
    assert both.exit_code == 2


def test_an_option_without_a_value_is_an_error() -> None:
    result = CliRunner().invoke(app, ["node", "corba-gateway", *BUS, "--naming"])
    assert result.exit_code == 2
    assert "option --naming needs a value" in result.stderr


def test_sim_is_a_sub_app_with_help() -> None:
    result = CliRunner().invoke(app, ["sim", "--help"])
    assert result.exit_code == 0
    assert "legacy-cis" in result.stdout
    legacy = CliRunner().invoke(app, ["sim", "legacy-cis", "--help"])
    assert legacy.exit_code == 0
    assert "--naming" in legacy.stdout and "--ior-file" in legacy.stdout
