"""docker/ is checked statically (no Docker engine here): images, ports and commands
in the compose file and Dockerfile must agree with the real CLI and with each other."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

DOCKER = Path(__file__).resolve().parents[2] / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
SERVICES: dict[str, dict] = COMPOSE["services"]
OURS = {name: s for name, s in SERVICES.items() if str(s.get("image", "")).startswith("powerbus:")}


@cache
def help_text(*subcommand: str) -> str:
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
    words = ("node", command[1]) if command[0] == "node" else (command[0],)
    return words, [w for w in command if w.startswith("--")]


def flag_value(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


@pytest.mark.parametrize("name", sorted(OURS))
def test_our_commands_use_real_subcommands_and_flags(name):
    command = OURS[name]["command"]
    words, flags = split_command(command)
    text = help_text(words[0])
    for flag in flags:
        assert re.search(rf"{re.escape(flag)}\b", text), (
            f"{name}: powerbus {words[0]} has no {flag}"
        )


@pytest.mark.parametrize("name", sorted(OURS))
def test_node_kinds_exist(name):
    command = OURS[name]["command"]
    if command[0] == "node":
        from powerbus.nodes.sdk.kinds import NODE_KINDS

        assert command[1] in NODE_KINDS


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_images_are_pinned(name):
    image = SERVICES[name]["image"]
    repo, _, tag = image.rpartition(":")
    assert repo and tag and tag != "latest", f"{name}: image {image!r} is not pinned to a version"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_host_ports_bind_loopback_only(name):
    for mapping in SERVICES[name].get("ports", []):
        assert str(mapping).startswith("127.0.0.1:"), (
            f"{name}: {mapping} is published on every interface"
        )


@pytest.mark.parametrize("name", sorted(OURS))
def test_published_ports_are_the_ones_listened_on(name):
    command = OURS[name]["command"]
    listened = {
        flag_value(command, f).rpartition(":")[2]
        for f in ("--grpc", "--http", "--listen")
        if f in command
    }
    for mapping in OURS[name].get("ports", []):
        assert str(mapping).rpartition(":")[2] in listened


def test_dependencies_name_real_services_and_nodes_reach_a_bus():
    for name, service in SERVICES.items():
        depends = service.get("depends_on", [])
        for target in depends if isinstance(depends, list) else depends.keys():
            assert target in SERVICES, f"{name} depends on unknown {target}"
    for name, service in OURS.items():
        command = service["command"]
        if command[0] == "node":
            bus_host, _, bus_port = flag_value(command, "--bus").partition(":")
            assert bus_host in OURS and flag_value(OURS[bus_host]["command"], "--grpc").endswith(
                ":" + bus_port
            )
            assert flag_value(command, "--advertise").partition(":")[0] == name


def test_buses_share_one_postgres_registry():
    urls = {flag_value(s["command"], "--db") for s in OURS.values() if s["command"][0] == "bus"}
    assert len(urls) == 1 and next(iter(urls)).startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in next(iter(urls))


def test_prometheus_scrapes_every_bus_http_port():
    config = yaml.safe_load((DOCKER / "prometheus.yml").read_text(encoding="utf-8"))
    targets = {
        t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]
    }
    expected = {
        f"{name}:{flag_value(s['command'], '--http').rpartition(':')[2]}"
        for name, s in OURS.items()
        if s["command"][0] == "bus"
    }
    assert targets == expected


def test_dockerfile_runs_the_cli_and_exposes_its_ports():
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (.+)$", text, re.M)[1])
    cmd = json.loads(re.search(r"^CMD (.+)$", text, re.M)[1])
    assert entrypoint == ["powerbus"]
    words, flags = split_command(cmd)
    for flag in flags:
        assert flag in help_text(words[0])
    exposed = set(re.search(r"^EXPOSE (.+)$", text, re.M)[1].split())
    assert exposed == {flag_value(cmd, f).rpartition(":")[2] for f in ("--grpc", "--http")}
    makefile = (DOCKER.parent / "Makefile").read_text(encoding="utf-8")
    for target in re.findall(r"RUN make ([\w./-]+)", text):
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), (
            f"Makefile has no target {target}"
        )


# --- the build context --------------------------------------------------------------------

CONTEXT = DOCKER.parent  # compose: context "..", dockerfile docker/Dockerfile


def dockerignore_rules() -> list[tuple[re.Pattern[str], bool]]:
    """(pattern, excludes) per line of .dockerignore, with Docker's matching rules: paths
    relative to the context, ``*`` within one segment, ``**`` across segments, a match on
    a folder covers what is in it, and the last matching line decides."""
    rules = []
    for line in (CONTEXT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        excludes = not line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        for part in re.split(r"(\*\*/?|\*|\?|\[[^]]*\])", pattern):
            if part.startswith("**"):
                regex += "(?:.*/)?" if part.endswith("/") else ".*"
            elif part == "*":
                regex += "[^/]*"
            elif part == "?":
                regex += "[^/]"
            elif part.startswith("["):
                regex += part
            else:
                regex += re.escape(part)
        rules.append((re.compile(rf"{regex}(?:/.*)?"), excludes))
    return rules


def in_context(path: str) -> bool:
    excluded = False
    for pattern, excludes in dockerignore_rules():
        if pattern.fullmatch(path):
            excluded = excludes
    return not excluded


def git_files() -> list[str]:
    if not (CONTEXT / ".git").exists():
        pytest.skip("not a git checkout")
    done = subprocess.run(
        ["git", "-C", str(CONTEXT), "ls-files", "-z"], capture_output=True, text=True, check=True
    )
    return [p for p in done.stdout.split("\0") if p]


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        "nodes/.venv/lib/x.py",
        "build/lib/powerbus/bus/cli.py",
        "build/generated/powerbus/echo/v1/echo_pb2.py",
        "powerbus/echo/v1/echo_pb2.py",
        "powerbus.egg-info/PKG-INFO",
        "bus/__pycache__/cli.cpython-311.pyc",
        "__pycache__/setup.cpython-311.pyc",
        ".mypy_cache/3.10/x.json",
        ".ruff_cache/x",
        ".pytest_cache/v/cache/lastfailed",
        ".hypothesis/examples/x",
        "test-output/junit.xml",
        "powerbus.db",
        "dist/powerbus-0.1.0-py3-none-any.whl",
        ".git/HEAD",
    ],
)
def test_host_artifacts_stay_out_of_the_build_context(path):
    assert not in_context(path)


def test_every_source_file_is_in_the_build_context():
    missing = [p for p in git_files() if not in_context(p)]
    assert missing == []


def test_the_image_builds_its_wheel_from_the_sources_alone():
    # No host venv, no make step: `pip wheel .` generates the code (setup.py's build_py).
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    build = re.split(r"^FROM ", text, flags=re.M)[1]
    assert build.rstrip().split("\n")[0].endswith(" AS build")
    assert "COPY . ." in build
    runs = " ".join(re.findall(r"^RUN (.+)$", build, re.M))
    assert "pip wheel" in runs and ".venv" not in runs and "make" not in runs
    requires = re.search(r"^requires = (\[.*\])$", (CONTEXT / "pyproject.toml").read_text(), re.M)
    assert requires and {"grpcio-tools", "mypy-protobuf"} <= {
        re.split(r"[<>=!~ ;\[]", r)[0] for r in json.loads(requires[1])
    }
