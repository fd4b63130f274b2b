"""The pytest plugin node authors use: factories that start and stop real processes, and
the leak guard. Inner pytest runs prove what a user of the plugin sees."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import grpc

from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.nodes.testing import BusHandle, NodeHandle, Snapshot, child_pids, eventually_sync
from powerbus.registry.v1 import registry_pb2, registry_pb2_grpc


def test_bus_and_node_factories_start_real_processes(bus_factory, node_factory):
    bus = bus_factory(lease_ttl="2s")
    node = node_factory("echo", bus=bus, node_id="echo-a", weight=30, zone="east")
    assert isinstance(bus, BusHandle) and isinstance(node, NodeHandle)
    assert bus.grpc.startswith("127.0.0.1:") and bus.http.startswith("127.0.0.1:")
    assert bus.state["grpc"] == bus.grpc and bus.process.poll() is None
    assert node.node_id == "echo-a" and node.address == node.state["grpc"]
    assert {bus.pid, node.pid} <= child_pids()
    with grpc.insecure_channel(bus.grpc) as channel:
        reply = echo_pb2_grpc.EchoStub(channel).Echo(echo_pb2.EchoRequest(message="m"), timeout=10)
        listed = registry_pb2_grpc.RegistryStub(channel).ListNodes(
            registry_pb2.ListNodesRequest(), timeout=10
        )
    assert reply.node_id == "echo-a"
    [registered] = [n for n in listed.nodes if n.node_id == "echo-a"]
    assert (registered.weight, registered.zone, registered.address) == (30, "east", node.address)
    assert node.stop() == 0 and node.stop() == 0  # idempotent
    assert bus.stop(signal.SIGINT) == 0
    assert not (node.running or bus.running)


def test_kill_pause_and_resume(bus, node_factory):
    node = node_factory("echo", bus=bus)
    node.pause()
    eventually_sync(lambda: _state_of(node.pid) == "T", timeout=5, what="stopped")
    node.resume()
    eventually_sync(lambda: _state_of(node.pid) != "T", timeout=5, what="continued")
    assert node.kill() == -signal.SIGKILL  # a crash is not reported as a failure


def _state_of(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def test_a_snapshot_reports_a_child_process_left_running_and_kills_it():
    before = Snapshot.take()
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        problems = before.leaks(grace=0.2)
        assert problems == [f"child process still running: pid {child.pid} ({_cmd(child)})"]
        assert child.wait(10) == -signal.SIGKILL
    finally:
        child.stdin.close()  # type: ignore[union-attr]
        child.kill()
        child.wait(10)
    assert before.leaks(grace=0) == []


def _cmd(child: subprocess.Popen[bytes]) -> str:
    return " ".join(child.args)  # type: ignore[arg-type]


def test_a_snapshot_reports_a_non_daemon_thread_until_it_ends():
    before = Snapshot.take()
    release = threading.Event()
    worker = threading.Thread(target=release.wait, args=(10,), name="forgotten")
    daemon = threading.Thread(target=release.wait, args=(10,), name="helper", daemon=True)
    worker.start()
    daemon.start()
    try:
        assert before.leaks(grace=0.1) == ["non-daemon thread still running: 'forgotten'"]
    finally:
        release.set()
        worker.join(10)
        daemon.join(10)
    assert before.leaks(grace=1) == []


INNER_TESTS = """
import subprocess, sys, threading

def test_leaks_a_process():
    subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                     stdin=subprocess.PIPE)

def test_leaks_a_thread():
    threading.Thread(target=threading.Event().wait, args=(5,), name="stuck").start()

def test_unknown_kind(node_factory):
    node_factory("nope", bus="127.0.0.1:1")

def test_fails_while_a_bus_runs(bus):
    assert bus.grpc == "elsewhere"
"""


def test_what_a_plugin_user_sees(tmp_path: Path):
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER_TESTS), encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "powerbus.nodes.testing.plugin",
            "-o",
            "addopts=",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            "-p",
            "no:cacheprovider",
            "-rA",
            "test_inner.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "ERROR test_inner.py::test_leaks_a_process" in out
    assert "test_inner.py::test_leaks_a_process leaked:\n  child process still running" in out
    assert (
        "test_inner.py::test_leaks_a_thread leaked:\n  non-daemon thread still running: 'stuck'"
        in out
    )
    assert "unknown node kind 'nope'; supported: " in out
    assert "exited with status 2 before it was ready" in out
    assert "bus-1 stderr" in out  # the failing test shows the bus's log
