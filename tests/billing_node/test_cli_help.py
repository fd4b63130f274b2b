"""``powerbus bill`` subcommands document themselves with an example, like every other."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("subcommand", ["quote", "run", "show"])
def test_bill_subcommands_have_help_with_an_example(subcommand):
    result = subprocess.run(
        [sys.executable, "-m", "powerbus.bus", "bill", subcommand, "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "Example" in result.stdout and "powerbus bill " + subcommand in result.stdout
