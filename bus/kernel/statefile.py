"""State files: a process announces the addresses it actually listens on once it is ready.

Scripts and tests wait for the file instead of sleeping. It is written atomically (a
rename), so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

__all__ = ["read_state_file", "wait_for_state_file", "write_state_file"]


def write_state_file(path: str | os.PathLike[str], state: Mapping[str, object]) -> None:
    """Atomically write ``state`` as a JSON object to ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(dict(state), out, indent=2, sort_keys=True)
        out.write("\n")
    os.replace(tmp, target)


def read_state_file(path: str | os.PathLike[str]) -> dict[str, object]:
    """Read a state file written by :func:`write_state_file`."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    return data


def wait_for_state_file(
    path: str | os.PathLike[str], *, timeout: float, poll: float = 0.05
) -> dict[str, object]:
    """Block until ``path`` exists, then read it; ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return read_state_file(path)
        except FileNotFoundError:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{path} not written within {timeout:.1f}s") from None
            time.sleep(poll)
