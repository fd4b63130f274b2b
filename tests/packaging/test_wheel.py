"""The wheel, built as a user would from a clean tree, runs the bus and nodes from anywhere.

``git archive HEAD`` is unpacked into a temporary folder (no .venv, no generated code, no
build/), ``pip wheel`` builds it (setup.py's build step generates the protobuf code), and
the wheel goes into a fresh venv. Offline: the build reuses this venv's build
requirements (``--no-build-isolation``) and the fresh venv sees this venv's dependencies
through a path entry, but not its editable ``powerbus`` (a ``.pth`` file named there as a
path is not processed). Then, from an empty folder, the installed ``powerbus`` command
runs a bus, an echo node and the legacy-cis adapter node against the CIS simulator, and
calls reach both nodes through the bus. About 10 s, so it runs with the rest of the suite.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from powerbus.adapters.corba.sim.cis_data import CisDatabase
from powerbus.bus.kernel.supervisor import BusHandle, NodeHandle, ProcessGroup, ProcessHandle
from powerbus.crm.v1 import crm_pb2, crm_pb2_grpc
from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
FOLDERS = ("bus", "nodes", "load_balancer", "monitoring", "adapters")
TIMEOUT = 120
CUSTOMERS, SEED = 20, 7


@dataclass
class Installed:
    wheel: Path
    venv: Path

    @property
    def powerbus(self) -> str:
        return str(self.venv / "bin" / "powerbus")

    def python(self, code: str, cwd: Path) -> str:
        done = run([str(self.venv / "bin" / "python"), "-c", code], cwd=cwd)
        return done.stdout


def run(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: nothing to git archive")
    work = tmp_path_factory.mktemp("packaging")
    source, dist, venv = work / "source", work / "dist", work / "venv"
    source.mkdir()
    run(["git", "-C", str(REPO), "archive", "--format=tar", "-o", str(work / "src.tar"), "HEAD"])
    run(["tar", "-x", "-f", str(work / "src.tar"), "-C", str(source)])
    assert not list((source / "powerbus").glob("*/v1")), "generated code is committed"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    run(
        [
            *pip,
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(dist),
            str(source),
        ]
    )
    (wheel,) = dist.glob("powerbus-*.whl")

    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    fresh_site = run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
        ]
    ).stdout.strip()
    # This venv's dependencies, after the fresh site-packages (and without our .pth files).
    dev_site = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (Path(fresh_site) / "dev_dependencies.pth").write_text("\n".join(sorted(dev_site)) + "\n")
    run(
        [
            *pip,
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--no-deps",
            "--no-index",
            str(wheel),
        ]
    )
    return Installed(wheel=wheel, venv=venv)


def test_the_wheel_has_every_module_and_data_file_of_the_folders(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    tracked = run(["git", "-C", str(REPO), "ls-files", "-z", "--", *FOLDERS, "idl"]).stdout
    expected = {f"powerbus/{path}" for path in tracked.split("\0") if path}
    assert expected - names == set(), "files git tracks that the wheel lacks"
    generated = {n for n in names if n.endswith(("_pb2.py", "_pb2_grpc.py", "_pb2.pyi"))}
    domains = {p.parent.parent.name for p in (REPO / "protos" / "powerbus").glob("*/v1/*.proto")}
    assert {n.split("/")[1] for n in generated} == domains
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def version(pattern: str, text: str) -> tuple[int, ...]:
    found = re.search(pattern, text)
    assert found, pattern
    return tuple(int(n) for n in re.split(r"[.,\s]+", found[1].strip()))


def test_the_dependency_floors_cover_the_generated_code(installed: Installed) -> None:
    # Generated code refuses to import on a grpcio or protobuf older than its generator.
    wheel = zipfile.ZipFile(installed.wheel)
    metadata = wheel.read(next(n for n in wheel.namelist() if n.endswith("METADATA"))).decode()
    grpc_code = wheel.read("powerbus/echo/v1/echo_pb2_grpc.py").decode()
    pb_code = wheel.read("powerbus/echo/v1/echo_pb2.py").decode()
    assert version(r"Requires-Dist: grpcio>=([\d.]+)", metadata) >= version(
        r"GRPC_GENERATED_VERSION = '([\d.]+)'", grpc_code
    )
    assert version(r"Requires-Dist: protobuf>=([\d.]+)", metadata) >= version(
        r"Domain.PUBLIC,\s*(\d+,\s*\d+,\s*\d+),", pb_code
    )


def test_the_installed_package_is_the_wheel_not_the_checkout(
    installed: Installed, tmp_path: Path
) -> None:
    code = (
        "import powerbus, powerbus.bus, powerbus.echo.v1.echo_pb2 as e;"
        "from powerbus.adapters.corba.legacy import legacy_file;"
        "print(*powerbus.__path__, e.__file__, legacy_file('LegacyCIS.idl'), sep='\\n')"
    )
    lines = installed.python(code, cwd=tmp_path).split()
    assert lines and all(line.startswith(str(installed.venv)) for line in lines), lines


@pytest.fixture
def empty_folder(
    tmp_path: Path, installed: Installed, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Processes start here, with the installed command first on PATH; omniidl (a console
    script of a dependency) is found after it, in this venv."""
    folder = tmp_path / "empty"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.setenv("PYTHONNOUSERSITE", "1")
    path = [
        str(installed.venv / "bin"),
        os.environ.get("PATH", ""),
        str(Path(sys.executable).parent),
    ]
    monkeypatch.setenv("PATH", os.pathsep.join(path))
    monkeypatch.setenv("POWERBUS_CORBA_STUBS", str(tmp_path / "stubs"))
    yield folder


def test_bus_echo_and_legacy_cis_run_from_the_installed_wheel(
    installed: Installed, empty_folder: Path, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    group = ProcessGroup(directory=logs)
    command = installed.powerbus

    def start(handle: ProcessHandle) -> None:
        group.handles.append(handle)
        handle.wait_ready(timeout=60)

    try:
        bus = BusHandle(
            name="bus",
            args=[
                command,
                "bus",
                "--grpc",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--db",
                f"sqlite:///{logs / 'bus.db'}",
                "--state-file",
                str(logs / "bus.json"),
            ],
            directory=logs,
            state_file=logs / "bus.json",
        )
        start(bus)
        node_args = ["--bus", bus.grpc, "--listen", "127.0.0.1:0"]
        start(
            NodeHandle(
                kind="echo",
                node_id="echo-1",
                name="echo-1",
                args=[
                    command,
                    "node",
                    "echo",
                    *node_args,
                    "--id",
                    "echo-1",
                    "--state-file",
                    str(logs / "echo-1.json"),
                ],
                directory=logs,
                state_file=logs / "echo-1.json",
            )
        )
        iors = logs / "cis.json"
        start(
            ProcessHandle(
                name="cis-sim",
                args=[
                    command,
                    "sim",
                    "legacy-cis",
                    "--ior-file",
                    str(iors),
                    "--customers",
                    str(CUSTOMERS),
                    "--seed",
                    str(SEED),
                    "--log-level",
                    "WARNING",
                    "--state-file",
                    str(logs / "cis-sim.json"),
                ],
                directory=logs,
                state_file=logs / "cis-sim.json",
            )
        )
        start(
            NodeHandle(
                kind="legacy-cis",
                node_id="cis-1",
                name="cis-1",
                args=[
                    command,
                    "node",
                    "legacy-cis",
                    *node_args,
                    "--id",
                    "cis-1",
                    "--ior-file",
                    str(iors),
                    "--state-file",
                    str(logs / "cis-1.json"),
                ],
                directory=logs,
                state_file=logs / "cis-1.json",
            )
        )
        assert list(empty_folder.iterdir()) == []

        customer = CisDatabase.generate(count=CUSTOMERS, seed=SEED).customers[0]
        with grpc.insecure_channel(bus.grpc) as channel:
            reply = echo_pb2_grpc.EchoStub(channel).Echo(
                echo_pb2.EchoRequest(message="wheel"), timeout=10
            )
            found = crm_pb2_grpc.CustomersStub(channel).GetCustomer(
                crm_pb2.GetCustomerRequest(customer_id=customer.cust_no), timeout=10
            )
        assert reply.message == "wheel"
        assert found.customer_id == customer.cust_no
    finally:
        group.close()
