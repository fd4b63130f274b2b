"""Without TLS, plaintext only on loopback: beyond it refused, or warned with --insecure;
beyond loopback the bus also needs access control."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from powerbus.bus.kernel.certificates import IdentityKind, init_ca, issue
from powerbus.bus.kernel.supervisor import BUS_COMMAND, NODE_COMMAND
from powerbus.bus.kernel.tls import check_unguarded_listen
from powerbus.nodes.testing.plugin import BusFactory


@pytest.mark.parametrize(
    "args",
    [
        pytest.param([*BUS_COMMAND, "--grpc", "0.0.0.0:0", "--http", "127.0.0.1:0"], id="bus"),
        pytest.param(
            [*NODE_COMMAND, "echo", "--bus", "127.0.0.1:1", "--listen", "0.0.0.0:0", "--id", "e"],
            id="node",
        ),
    ],
)
def test_plaintext_beyond_loopback_is_refused(args: list[str], tmp_path: Path) -> None:
    done = subprocess.run(
        [*args, *(["--db", f"sqlite:///{tmp_path / 'r.db'}"] if "bus" in args else [])],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 1, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "refusing to serve plaintext on 0.0.0.0, beyond loopback" in lines[0]
    assert "--insecure" in lines[0]


def test_insecure_serves_beyond_loopback_with_a_warning(bus_factory: BusFactory) -> None:
    bus = bus_factory(grpc="0.0.0.0:0", insecure=True)
    assert bus.grpc.startswith("0.0.0.0:")
    assert "INSECURE: grpc serves plaintext on 0.0.0.0" in bus.stderr_tail(200)


# A documentation address (TEST-NET-1, never assigned): should the refusal ever regress,
# the bind fails instead of listening on a real interface.
BEYOND = "192.0.2.1"


def test_tls_beyond_loopback_also_needs_access_control(tmp_path: Path) -> None:
    # TLS proves who calls; without rules anyone with a certificate could do anything.
    pki = tmp_path / "certs"
    init_ca(pki)
    issued = issue(pki, IdentityKind.BUS, "main")
    tls = ["--tls-cert", str(issued.cert), "--tls-key", str(issued.key)]
    tls += ["--tls-ca", str(pki / "ca.pem")]
    done = subprocess.run(
        [*BUS_COMMAND, "--grpc", f"{BEYOND}:0", "--http", "127.0.0.1:0", *tls],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 1, done
    assert done.stderr.strip() == (
        f"error: grpc: refusing to serve on {BEYOND}, beyond loopback, without access "
        "control; give --access-control (rules: powerbus acl), or --insecure to allow it"
    ), done.stderr
    # With access control (or --insecure) the same check lets it start.
    check_unguarded_listen("grpc", BEYOND, access_control=True, insecure=False)
