"""What the static checks of docker/ share: the real CLI's help, and command lines read."""

from __future__ import annotations

import subprocess
import sys
from functools import cache


@cache
def help_text(*subcommand: str) -> str:
    """`powerbus SUBCOMMAND... --help` of the installed CLI (a node KIND adds its options)."""
    result = subprocess.run(
        [sys.executable, "-m", "powerbus.bus", *subcommand, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"powerbus {' '.join(subcommand)} --help failed: {result.stderr}"
    return result.stdout


def split_command(command: list[str]) -> tuple[tuple[str, ...], list[str]]:
    """(subcommand words, flags) of a powerbus command line."""
    words = (command[0], command[1]) if command[0] in ("node", "sim") else (command[0],)
    return words, [w for w in command if w.startswith("--")]
