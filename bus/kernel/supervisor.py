"""Real powerbus processes: start a bus and nodes as child processes, wait for their state
files, stop them cleanly (SIGTERM, then SIGKILL after a bound) and show their output when
they fail. The demo, the benchmarks and the test plugin all start processes with this.

Example::

    group = ProcessGroup(directory=tmp_path)
    bus = group.start_bus()
    node = group.start_node("echo", bus=bus)   # returns once registered
    node.address                               # "127.0.0.1:40123"
    group.close()                              # node, then bus; each must exit 0
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.statefile import wait_for_state_file

__all__ = [
    "BUS_COMMAND",
    "NODE_COMMAND",
    "BusHandle",
    "NodeHandle",
    "ProcessError",
    "ProcessGroup",
    "ProcessHandle",
]

BUS_COMMAND: tuple[str, ...] = (sys.executable, "-m", "powerbus.bus", "bus")
NODE_COMMAND: tuple[str, ...] = (sys.executable, "-m", "powerbus.bus", "node")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
_CLEAN_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_TAIL_LINES = 40

Option = str | int | float | bool | Path | HostPort | None
H = TypeVar("H", bound="ProcessHandle")


class ProcessError(RuntimeError):
    """A process did not start, did not stop in time, or exited with a failure."""


class ProcessHandle:
    """One child process with its output in ``<name>.out`` / ``<name>.err``."""

    def __init__(
        self,
        *,
        name: str,
        args: Sequence[str],
        directory: Path,
        state_file: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.args = list(args)
        self.state_file = state_file
        self.stdout_path = directory / f"{name}.out"
        self.stderr_path = directory / f"{name}.err"
        self.state: dict[str, object] = {}
        self.expected_exit = False
        self._paused = False
        # A predecessor of the same name that was killed left its state file: it must not
        # pass for this process being ready.
        state_file.unlink(missing_ok=True)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                # Its own session: a Ctrl-C in the terminal (SIGINT to the whole
                # foreground group) reaches the supervisor only, which stops its
                # processes in order. Signalled directly as well, a process that had
                # already stopped got the supervisor's SIGTERM with no handler left and
                # died of it (status -15), and the demo reported it as a failure.
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, *, timeout: float = START_TIMEOUT) -> dict[str, object]:
        """Wait for the state file; fail with the stderr tail if the process exits first."""
        deadline = time.monotonic() + timeout
        while True:
            code = self.process.poll()
            if code is not None:
                self.expected_exit = True  # reported here; not again when the test ends
                raise ProcessError(self._report(f"exited with status {code} before it was ready"))
            try:
                self.state = wait_for_state_file(self.state_file, timeout=0.1)
                return self.state
            except TimeoutError:
                if time.monotonic() >= deadline:
                    self.expected_exit = True
                    self._force_exit()
                    raise ProcessError(
                        self._report(f"wrote no {self.state_file.name} within {timeout:.0f}s")
                    ) from None

    def stop(
        self, signal: signal.Signals = signal.SIGTERM, *, timeout: float = STOP_TIMEOUT
    ) -> int:
        """Send ``signal`` and wait for the exit; SIGKILL after ``timeout``. Idempotent.

        After SIGTERM or SIGINT the exit status must be 0, or :class:`ProcessError` is raised.
        """
        if self.running:
            self.process.send_signal(signal)
            self.resume()  # a stopped process handles the signal only once continued
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._force_exit()
                raise ProcessError(
                    self._report(f"still running {timeout:.0f}s after {signal.name}; killed")
                ) from None
            self.expected_exit = signal not in _CLEAN_SIGNALS
        self.check_exit()
        return self.process.returncode

    def kill(self) -> int:
        """SIGKILL, as a crash would; the exit status is not checked."""
        self.expected_exit = True
        self._force_exit()
        return self.process.returncode

    def pause(self) -> None:
        """SIGSTOP: the process hangs (heartbeats stop, calls stall) until :meth:`resume`."""
        if self.running:
            self.process.send_signal(signal.SIGSTOP)
            self._paused = True

    def resume(self) -> None:
        if self._paused and self.running:
            self.process.send_signal(signal.SIGCONT)
        self._paused = False

    def check_exit(self) -> None:
        """Fail if the process exited with a non-zero status nobody asked for."""
        code = self.process.poll()
        if code not in (None, 0) and not self.expected_exit:
            raise ProcessError(self._report(f"exited with status {code}"))

    def stderr_tail(self, lines: int = _TAIL_LINES) -> str:
        try:
            text = self.stderr_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _force_exit(self) -> None:
        if self.running:
            self.process.kill()
        self.process.wait(STOP_TIMEOUT)
        self._paused = False

    def _report(self, problem: str) -> str:
        return (
            f"{self.name} (pid {self.pid}) {problem}\n"
            f"command: {' '.join(self.args)}\n"
            f"--- last lines of {self.stderr_path} ---\n{self.stderr_tail()}"
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} pid={self.pid} running={self.running}>"


class BusHandle(ProcessHandle):
    """A ``powerbus bus`` process; ``grpc`` and ``http`` are the addresses it listens on."""

    @property
    def grpc(self) -> str:
        return str(self.state["grpc"])

    @property
    def http(self) -> str:
        return str(self.state["http"])

    @property
    def address(self) -> str:
        return self.grpc


class NodeHandle(ProcessHandle):
    """A ``powerbus node KIND`` process, registered with its bus."""

    def __init__(self, *, kind: str, node_id: str, **kwargs: object) -> None:
        self.kind = kind
        self.node_id = node_id
        super().__init__(**kwargs)  # type: ignore[arg-type]

    @property
    def address(self) -> str:
        return str(self.state["grpc"])


class ProcessGroup:
    """The processes one test started, stopped together (newest first) by :meth:`close`."""

    def __init__(self, *, directory: Path) -> None:
        self.directory = directory
        self.handles: list[ProcessHandle] = []
        self._numbers = itertools.count(1)

    def start_bus(
        self,
        *,
        env: Mapping[str, str] | None = None,
        ready_timeout: float = START_TIMEOUT,
        **options: Option,
    ) -> BusHandle:
        """Start ``powerbus bus`` on free loopback ports with a SQLite database of its own."""
        name = f"bus-{next(self._numbers)}"
        state_file = self.directory / f"{name}.json"
        flags: dict[str, Option] = {
            "grpc": "127.0.0.1:0",
            "http": "127.0.0.1:0",
            "db": f"sqlite:///{self.directory / name}.db",
            "state_file": state_file,
            **options,
        }
        handle = BusHandle(
            name=name,
            args=[*BUS_COMMAND, *_flags(flags)],
            directory=self.directory,
            state_file=state_file,
            env=env,
        )
        return self._ready(handle, ready_timeout)

    def start_node(
        self,
        kind: str,
        *,
        bus: BusHandle | HostPort | str,
        node_id: str | None = None,
        env: Mapping[str, str] | None = None,
        ready_timeout: float = START_TIMEOUT,
        **options: Option,
    ) -> NodeHandle:
        """Start ``powerbus node KIND`` against ``bus``; returns once it registered."""
        node_id = node_id or f"{kind}-{next(self._numbers)}"
        state_file = self.directory / f"{node_id}.json"
        flags: dict[str, Option] = {
            "bus": bus.grpc if isinstance(bus, BusHandle) else str(bus),
            "listen": "127.0.0.1:0",
            "id": node_id,
            "state_file": state_file,
            **options,
        }
        handle = NodeHandle(
            kind=kind,
            node_id=node_id,
            name=node_id,
            args=[*NODE_COMMAND, kind, *_flags(flags)],
            directory=self.directory,
            state_file=state_file,
            env=env,
        )
        return self._ready(handle, ready_timeout)

    def _ready(self, handle: H, timeout: float) -> H:
        self.handles.append(handle)
        handle.wait_ready(timeout=timeout)
        return handle

    def close(self) -> None:
        """Stop every process still running, newest first; report every failure together."""
        problems: list[str] = []
        for handle in reversed(self.handles):
            try:
                handle.stop()
            except ProcessError as exc:
                problems.append(str(exc))
        self.handles.clear()
        if problems:
            raise ProcessError("\n\n".join(problems))


def _flags(options: Mapping[str, Option]) -> list[str]:
    args: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        args += [flag] if value is True else [flag, str(value)]
    return args
