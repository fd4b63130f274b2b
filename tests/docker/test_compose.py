"""docker/ is checked statically (no Docker engine here): images, ports and commands
in the compose file and Dockerfile must agree with the real CLI and with each other."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
import yaml
from docker_support import help_text, split_command

DOCKER = Path(__file__).resolve().parents[2] / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
SERVICES: dict[str, dict] = COMPOSE["services"]
IMAGE = {name: s for name, s in SERVICES.items() if str(s.get("image", "")).startswith("powerbus:")}
# Services of our image that run another of its programs (omniNames) are not powerbus commands.
OURS = {name: s for name, s in IMAGE.items() if "entrypoint" not in s}


def flag_value(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


@pytest.mark.parametrize("name", sorted(OURS))
def test_our_commands_use_real_subcommands_and_flags(name):
    command = OURS[name]["command"]
    words, flags = split_command(command)
    text = help_text(*words)  # `node KIND --help` lists the kind's own options too
    for flag in flags:
        assert re.search(rf"{re.escape(flag)}\b", text), (
            f"{name}: powerbus {' '.join(words)} has no {flag}"
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


def listened_port(command: list[str]) -> str:
    """The port a command serves its health on: a bus's HTTP, a node's gRPC, a sim's IIOP."""
    flag = {"bus": "--http", "node": "--listen", "sim": "--listen"}[command[0]]
    return flag_value(command, flag).rpartition(":")[2]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_service_has_a_healthcheck(name):
    check = SERVICES[name].get("healthcheck")
    assert check and check["test"][0] == "CMD", f"{name}: no healthcheck"
    assert {"interval", "timeout", "retries"} <= set(check)


@pytest.mark.parametrize("name", sorted(OURS))
def test_healthchecks_probe_the_port_the_command_listens_on(name):
    command = OURS[name]["command"]
    probe = " ".join(OURS[name]["healthcheck"]["test"])
    port = listened_port(command)
    assert re.search(rf"127\.0\.0\.1['\"]?[:,] ?{port}\b", probe), (
        f"{name}: healthcheck does not probe port {port}: {probe}"
    )
    if command[0] == "bus":
        assert "/healthz" in probe
    elif command[0] == "node":
        assert "grpc_health" in probe and "Check(" in probe


def test_nodes_wait_for_a_healthy_bus():
    for name, service in OURS.items():
        if service["command"][0] == "node":
            bus = flag_value(service["command"], "--bus").partition(":")[0]
            assert service["depends_on"][bus] == {"condition": "service_healthy"}, name


def test_omninames_runs_from_the_image_and_corba_services_find_it():
    naming = {n: s for n, s in IMAGE.items() if s.get("entrypoint") == ["omniNames"]}
    assert len(naming) == 1, "compose runs one omniNames"
    ((name, service),) = naming.items()
    # The image installs jeteve-omniorb, which ships omniNames beside python.
    assert (Path(sys.executable).parent / "omniNames").exists()
    usage = subprocess.run(
        [str(Path(sys.executable).parent / "omniNames"), "-help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    command = service["command"]
    for option in (w for w in command if w.startswith("-") and not w.startswith("-ORB")):
        assert option in usage.stdout + usage.stderr, f"omniNames has no {option}"
    port = command[command.index("-start") + 1]
    assert f"giop:tcp::{port}" in command
    assert f"'127.0.0.1', {port}" in " ".join(service["healthcheck"]["test"])
    users = {n for n, s in OURS.items() if "--naming" in s["command"]}
    assert {"corba-1", "legacy-cis", "cis-1"} <= users
    for user in users:
        assert flag_value(OURS[user]["command"], "--naming") == (
            f"corbaloc::{name}:{port}/NameService"
        )
        assert OURS[user]["depends_on"][name] == {"condition": "service_healthy"}
    kinds = {s["command"][1] for s in OURS.values() if s["command"][0] == "node"}
    assert {"corba-gateway", "legacy-cis"} <= kinds


def test_prometheus_loads_the_rules_of_the_repository(tmp_path):
    """The rule files prometheus.yml names are the repository's, mounted by compose; promtool
    checks the config with them (the rules and their syntax) through those mounts."""
    service = SERVICES["prometheus"]
    mounts = {}
    for volume in service["volumes"]:
        source, target = volume.split(":")[:2]
        mounts[PurePosixPath(target)] = (DOCKER / source).resolve()
    config = yaml.safe_load((DOCKER / "prometheus.yml").read_text(encoding="utf-8"))
    rule_files = [PurePosixPath(r) for r in config["rule_files"]]
    rules = DOCKER.parent / "monitoring" / "prometheus" / "powerbus-rules.yml"
    assert [mounts[r] for r in rule_files] == [rules.resolve()]
    assert mounts[PurePosixPath("/etc/prometheus/prometheus.yml")] == DOCKER / "prometheus.yml"
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    if not Path(promtool).exists():
        pytest.fail("promtool is not installed (make system-deps installs prometheus)")
    # The same config with each mounted path replaced by the file compose mounts there.
    config["rule_files"] = [str(mounts[r]) for r in rule_files]
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(config), encoding="utf-8")
    done = subprocess.run(
        [promtool, "check", "config", str(local)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


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
