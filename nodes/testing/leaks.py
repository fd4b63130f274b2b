"""Finding what a test left running: child processes and non-daemon threads.

Example::

    before = Snapshot.take()
    ...                                        # the test
    assert before.leaks(grace=2.0) == []       # everything started was stopped
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Snapshot", "child_pids"]

_PROC = Path("/proc")


def child_pids() -> set[int]:
    """Live (not zombie) children of this process; empty where there is no /proc."""
    me = os.getpid()
    children: set[int] = set()
    if not _PROC.is_dir():
        return children
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited meanwhile
            continue
        # The command name may hold spaces and parentheses; fields resume after the last ")".
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if int(ppid) == me and state != "Z":
            children.add(int(entry.name))
    return children


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Threads and child processes alive at one moment."""

    threads: frozenset[threading.Thread]
    children: frozenset[int]

    @classmethod
    def take(cls) -> Snapshot:
        return cls(frozenset(threading.enumerate()), frozenset(child_pids()))

    def leaks(self, *, grace: float = 2.0, kill: bool = True) -> list[str]:
        """What was started since this snapshot and is still alive after ``grace`` seconds
        (things being shut down get that long). Leaked children are killed if ``kill``."""
        deadline = time.monotonic() + grace
        while True:
            threads = [
                t
                for t in threading.enumerate()
                if t not in self.threads and t.is_alive() and not t.daemon
            ]
            children = sorted(child_pids() - self.children)
            if (not threads and not children) or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        problems = [f"non-daemon thread still running: {t.name!r}" for t in threads]
        for pid in children:
            problems.append(f"child process still running: pid {pid} ({_cmdline(pid)})")
            if kill:
                _kill(pid)
        return problems


def _cmdline(pid: int) -> str:
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def _kill(pid: int) -> None:
    # Not reaped here: its Popen, if any, still learns how it ended.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
