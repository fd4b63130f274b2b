"""``powerbus sim bank`` as a real process against a utility side on loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import socket
import sys
from pathlib import Path

from bank_support import ACCOUNTS, BANK, KEY, MemoryUtility

from powerbus.adapters.bank import ProtocolServer, Window, read_statement, reconcile
from powerbus.nodes.testing.waiting import eventually


async def test_the_simulator_process_collects_writes_its_statement_and_stops_cleanly(
    utility_server: ProtocolServer, utility: MemoryUtility, tmp_path: Path
) -> None:
    accounts = tmp_path / "accounts.txt"
    accounts.write_text("\n".join(ACCOUNTS) + "\n", encoding="utf-8")
    state = tmp_path / "bank.json"
    with socket.socket() as probe:  # a port free now, for --listen
        probe.bind(("127.0.0.1", 0))
        listen = f"127.0.0.1:{probe.getsockname()[1]}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "powerbus.bus",
        "sim",
        "bank",
        "--bank",
        BANK,
        "--connect",
        str(utility_server.address),
        "--listen",
        listen,
        "--count",
        "30",
        "--rate",
        "300",
        "--accounts-file",
        str(accounts),
        "--drop-dir",
        str(tmp_path / "drop"),
        "--faults",
        "lost_reply=0.2,duplicate=0.1",
        "--key-hex",
        KEY.hex(),
        "--statement-interval",
        "0.2",
        "--state-file",
        str(state),
        "--log-level",
        "WARNING",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        ready = await eventually(
            lambda: state.exists() and json.loads(state.read_text()),
            timeout=30,
            what="the simulator's state file",
        )
        assert ready["bank"] == BANK and ready["listen"] == listen
        await eventually(lambda: len(utility.entries) == 30, timeout=30, what="30 collections")
        await eventually(
            lambda: list((tmp_path / "drop").glob("*.txt")), timeout=10, what="a statement file"
        )
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    stats = json.loads(state.read_text())["stats"]
    assert stats["started"] == 30 and stats["timeouts"] > 0
    (path,) = (tmp_path / "drop").glob("0102_COLLECTION_*.txt")
    statement = read_statement(path)
    report = reconcile(
        utility.entries.values(),
        statement,
        Window(settlement_date=statement.settlement_date),
        generated_at=dt.datetime.now(),
    )
    assert report.balanced


async def test_bad_options_are_named() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "powerbus.bus",
        "sim",
        "bank",
        "--bank",
        BANK,
        "--connect",
        "127.0.0.1:1",
        "--faults",
        "teleport=1",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    assert "--faults: 'teleport=1'" in err.decode()
