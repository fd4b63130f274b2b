"""docker/k8s/ is checked statically like compose (no cluster here): every command and flag
is the real CLI's, probes and Services point at ports the containers listen on, the
ConfigMap is a bus configuration `powerbus config check` accepts, and every name a
manifest refers to (ConfigMap, labels, environment variables) exists."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]
from pathlib import Path
from typing import Any

import pytest
import yaml
from docker_support import help_text, split_command

from powerbus.bus.config import BusConfig
from powerbus.nodes.sdk.config import NodeConfig

DOCKER = Path(__file__).resolve().parents[2] / "docker"
K8S = DOCKER / "k8s"
DOCS: list[dict[str, Any]] = [
    doc
    for path in sorted(K8S.glob("*.yaml"))
    for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
    if doc
]
DEPLOYMENTS = {d["metadata"]["name"]: d for d in DOCS if d["kind"] == "Deployment"}
SERVICES = {d["metadata"]["name"]: d for d in DOCS if d["kind"] == "Service"}
CONFIG_MAPS = {d["metadata"]["name"]: d for d in DOCS if d["kind"] == "ConfigMap"}
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))


def containers() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{name}/{c['name']}", c)
        for name, d in DEPLOYMENTS.items()
        for c in d["spec"]["template"]["spec"]["containers"]
    ]


def deployment_of(container: str) -> dict[str, Any]:
    return DEPLOYMENTS[container.partition("/")[0]]


def flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def mounted_config(container: str, spec: dict[str, Any]) -> dict[str, Any]:
    """The TOML file a ``--config`` flag names, read from the ConfigMap mounted there."""
    path = Path(flag(spec["args"], "--config") or "")
    pod = deployment_of(container)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in spec.get("volumeMounts", []):
        if path.parent == Path(mount["mountPath"]):
            config_map = CONFIG_MAPS[volumes[mount["name"]]["configMap"]["name"]]
            return tomllib.loads(config_map["data"][path.name])
    raise AssertionError(f"{container}: nothing mounted at {path.parent}")


def listened(container: str, spec: dict[str, Any]) -> dict[str, int]:
    """Port → what, of the addresses the container's command listens on."""
    args = spec["args"]
    if args[0] == "bus":
        table = mounted_config(container, spec)["bus"] if "--config" in args else {}
        addresses = {k: flag(args, f"--{k}") or table.get(k) for k in ("grpc", "http")}
        addresses |= {k: table.get(k) for k in ("events_in", "events_out")}
    else:
        addresses = {"grpc": flag(args, "--listen")}
    return {int(a.rpartition(":")[2]): k for k, a in addresses.items() if a}


def test_there_are_deployments_for_the_bus_and_nodes_a_service_and_a_config_map():
    kinds = {c["args"][0] for _, c in containers()}
    assert kinds == {"bus", "node"}
    assert SERVICES and CONFIG_MAPS


@pytest.mark.parametrize("name", [n for n, _ in containers()])
def test_commands_use_real_subcommands_and_flags(name):
    spec = dict(containers())[name]
    words, flags = split_command(spec["args"])
    text = help_text(*words)
    for option in flags:
        assert re.search(rf"{re.escape(option)}\b", text), (
            f"{name}: powerbus {' '.join(words)} has no {option}"
        )
    if words[0] == "node":
        from powerbus.nodes.sdk.kinds import NODE_KINDS

        assert words[1] in NODE_KINDS


@pytest.mark.parametrize("name", [n for n, _ in containers()])
def test_the_image_is_the_one_compose_builds(name):
    assert dict(containers())[name]["image"] == COMPOSE["x-powerbus"]["image"]


@pytest.mark.parametrize("name", [n for n, _ in containers()])
def test_readiness_is_grpc_health_on_the_grpc_port_listened_on(name):
    spec = dict(containers())[name]
    ports = listened(name, spec)
    declared = {p["containerPort"] for p in spec["ports"]}
    assert declared == set(ports), f"{name}: declares {declared}, listens on {set(ports)}"
    for probe in ("readinessProbe", "livenessProbe"):
        port = spec[probe]["grpc"]["port"]
        assert ports.get(port) == "grpc", f"{name}: {probe} on {port}, not the gRPC port"


@pytest.mark.parametrize("name", [n for n, _ in containers()])
def test_arguments_refer_only_to_defined_variables_and_settings(name):
    spec = dict(containers())[name]
    env = {e["name"]: e for e in spec.get("env", [])}
    for variable in re.findall(r"\$\((\w+)\)", " ".join(spec["args"])):
        assert variable in env, f"{name}: $({variable}) is not set"
    settings = BusConfig if spec["args"][0] == "bus" else NodeConfig
    fields = {f.name for f in dataclasses.fields(settings)}
    for variable in env:
        if variable.startswith("POWERBUS_"):
            assert variable.removeprefix("POWERBUS_").lower() in fields, variable


def test_nodes_reach_the_bus_service_and_advertise_their_pod():
    for _name, spec in containers():
        args = spec["args"]
        if args[0] != "node":
            continue
        host, _, port = (flag(args, "--bus") or "").partition(":")
        service = SERVICES[host]
        assert int(port) in {p["port"] for p in service["spec"]["ports"]}
        assert flag(args, "--advertise") == f"$(POD_IP):{flag(args, '--listen').rpartition(':')[2]}"
        env = {e["name"]: e for e in spec["env"]}
        assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_services_select_a_deployment_and_target_its_ports(name):
    spec = SERVICES[name]["spec"]
    chosen = [
        d
        for d in DEPLOYMENTS.values()
        if spec["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert len(chosen) == 1, f"{name}: selects {len(chosen)} deployments"
    ports = {
        p.get("name"): p["containerPort"]
        for c in chosen[0]["spec"]["template"]["spec"]["containers"]
        for p in c["ports"]
    }
    for port in spec["ports"]:
        target = port["targetPort"]
        assert target in ports or target in ports.values(), f"{name}: no port {target}"


def test_deployments_select_their_own_pods():
    for name, d in DEPLOYMENTS.items():
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert d["spec"]["selector"]["matchLabels"].items() <= labels.items(), name


def test_the_config_map_is_a_bus_configuration_that_holds(tmp_path):
    for name, config_map in CONFIG_MAPS.items():
        for key, text in config_map["data"].items():
            path = tmp_path / key
            path.write_text(text, encoding="utf-8")
            done = subprocess.run(
                [sys.executable, "-m", "powerbus.bus", "config", "check", str(path)],
                capture_output=True,
                text=True,
                timeout=60,
                env={"PATH": "/usr/bin:/bin"},  # no POWERBUS_* of the caller's
            )
            assert done.returncode == 0, f"{name}/{key}: {done.stdout}{done.stderr}"
    used = {
        v["configMap"]["name"]
        for d in DEPLOYMENTS.values()
        for v in d["spec"]["template"]["spec"].get("volumes", [])
        if "configMap" in v
    }
    assert used == set(CONFIG_MAPS)


def _settings(args: list[str], table: dict[str, Any]) -> dict[str, Any]:
    """What a bus or node command resolves its listen checks from: flags, else the table."""

    def given(key: str) -> Any:
        name = "--" + key.replace("_", "-")
        if name in args:
            return True if key in ("insecure", "access_control") else flag(args, name)
        return table.get(key)

    host_key = "grpc" if args[0] == "bus" else "listen"
    address = given(host_key) or ("127.0.0.1:50051" if args[0] == "bus" else "127.0.0.1:0")
    return {
        "host": str(address).rpartition(":")[0].strip("[]"),
        "tls": bool(given("tls_cert")),
        "insecure": bool(given("insecure")),
        "access_control": bool(given("access_control")),
    }


def _commands() -> list[tuple[str, list[str], dict[str, Any]]]:
    found = []
    for name, spec in containers():
        args = spec["args"]
        table = mounted_config(name, spec).get(args[0], {}) if "--config" in args else {}
        found.append((f"k8s {name}", args, table))
    for name, service in COMPOSE["services"].items():
        command = service.get("command")
        if str(service.get("image", "")).startswith("powerbus:") and "entrypoint" not in service:
            found.append((f"compose {name}", command, {}))
    dockerfile = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.M)
    assert cmd is not None
    found.append(("Dockerfile CMD", yaml.safe_load(cmd.group(1)), {}))
    return [(n, a, t) for n, a, t in found if a and a[0] in ("bus", "node")]


@pytest.mark.parametrize("where", [c[0] for c in _commands()])
def test_every_bus_and_node_passes_the_listen_checks_it_will_meet(where: str) -> None:
    # The checks a process makes at start, run on what the manifest gives it: beyond
    # loopback a bus or node needs TLS (a bus also access control) or says --insecure.
    from powerbus.bus.kernel.tls import check_plaintext_listen, check_unguarded_listen

    (_, args, table) = next(c for c in _commands() if c[0] == where)
    s = _settings(args, table)
    if not s["tls"]:
        check_plaintext_listen("grpc", s["host"], insecure=s["insecure"])
    if args[0] == "bus":
        check_unguarded_listen(
            "grpc", s["host"], access_control=s["access_control"], insecure=s["insecure"]
        )
