"""``powerbus sim meters`` as a process: state file, meters file, control, clean stop."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from powerbus.adapters.meters import load_meters
from powerbus.bus.kernel.supervisor import ProcessGroup, ProcessHandle

HEADER = "meter_id,protocol,gateway,address,model,pulse_constant"


def test_sim_meters_command(powerbus_processes: ProcessGroup, tmp_path: Path) -> None:
    state_file = tmp_path / "farm.json"
    handle = ProcessHandle(
        name="sim-meters",
        args=[
            sys.executable, "-m", "powerbus.bus", "sim", "meters",
            "--meters", "24", "--gateways", "3", "--seed", "5", "--speed", "60",
            "--faults", "M00002=no-answer;M00003=clock-jump:-600",
            "--state-file", str(state_file),
        ],
        directory=powerbus_processes.directory,
        state_file=state_file,
    )  # fmt: skip
    powerbus_processes.handles.append(handle)  # stopped (SIGTERM, exit 0) at teardown
    state = handle.wait_ready(timeout=30)
    gateways = state["gateways"]
    assert isinstance(gateways, list) and len(gateways) == 3
    assert [g["protocol"] for g in gateways] == ["modbus", "dlt645", "modbus"]
    meters_file = Path(str(state["meters_file"]))
    assert meters_file.read_text().splitlines()[0] == HEADER
    specs = load_meters(meters_file)
    assert len(specs) == 24
    assert {s.model.value for s in specs} == {"sdm630", "sdm120", "pulse8", "dlt645"}
    assert {str(s.gateway) for s in specs} == {g["address"] for g in gateways}
    host, _, port = str(state["control"]).rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(b'{"op": "fault", "meter": "M00005", "fault": "garbage"}\n{"op": "bogus"}\n')
        lines = conn.makefile()  # one reader: a second would miss what the first buffered
        replies = lines.readline(), lines.readline()
    assert json.loads(replies[0]) == {"ok": True}
    assert json.loads(replies[1])["ok"] is False
    assert handle.stop() == 0


def test_bad_fault_spec_fails_with_a_message(
    powerbus_processes: ProcessGroup, tmp_path: Path
) -> None:
    state_file = tmp_path / "farm.json"
    handle = ProcessHandle(
        name="sim-bad",
        args=[sys.executable, "-m", "powerbus.bus", "sim", "meters", "--faults", "M1=melted",
              "--state-file", str(state_file)],
        directory=powerbus_processes.directory,
        state_file=state_file,
    )  # fmt: skip
    handle.expected_exit = True
    assert handle.process.wait(30) == 1
    assert "unknown fault 'melted'" in handle.stderr_path.read_text()


def test_an_all_dlt645_farm(powerbus_processes: ProcessGroup, tmp_path: Path) -> None:
    state_file = tmp_path / "farm.json"
    handle = ProcessHandle(
        name="sim-dlt645",
        args=[sys.executable, "-m", "powerbus.bus", "sim", "meters", "--meters", "6",
              "--gateways", "2", "--lines", "dlt645", "--state-file", str(state_file)],
        directory=powerbus_processes.directory,
        state_file=state_file,
    )  # fmt: skip
    powerbus_processes.handles.append(handle)
    state = handle.wait_ready(timeout=30)
    assert [g["protocol"] for g in state["gateways"]] == ["dlt645", "dlt645"]
    specs = load_meters(Path(str(state["meters_file"])))
    assert {s.model.value for s in specs} == {"dlt645"}
    assert handle.stop() == 0


def test_an_unknown_line_mix_is_refused_naming_the_choices() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "powerbus.bus", "sim", "meters", "--lines", "rs485"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == "error: --lines: 'rs485' is none of mixed, dlt645, modbus"


def test_help_has_an_example() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "powerbus.bus", "sim", "meters", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Example" in done.stdout and "--faults" in done.stdout
