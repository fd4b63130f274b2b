"""Processes for the tracing tests, each run as ``python tracing_support.py ROLE ...``.

- ``receiver --out FILE --state-file FILE``: a real OTLP/gRPC collector endpoint (the
  ``opentelemetry.proto.collector.trace.v1.TraceService`` of the opentelemetry-proto
  package) on a free loopback port; every span it receives is one JSON line in FILE.
- ``relay --bus HOST:PORT --id ID --state-file FILE --otlp-endpoint URL``: an SDK node serving
  ``powerbus.crm.v1.Customers/GetCustomer`` by calling ``Echo`` through the bus, so a node's
  own downstream call can be seen in a trace.

:func:`start` runs one under the test's process group (stopped when the test ends) and
:func:`read_spans` reads what the receiver wrote.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from powerbus.bus.kernel.addresses import parse_host_port
from powerbus.bus.kernel.statefile import write_state_file
from powerbus.bus.kernel.supervisor import ProcessGroup, ProcessHandle
from powerbus.crm.v1 import crm_pb2, crm_pb2_grpc
from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.nodes.sdk.cli import configure_logging
from powerbus.nodes.sdk.config import NodeConfig
from powerbus.nodes.sdk.node import Node
from powerbus.nodes.sdk.process import run_node

_KINDS = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


def start(group: ProcessGroup, role: str, name: str, *args: str) -> ProcessHandle:
    """Start ``role`` with ``args`` and wait for its state file."""
    state_file = group.directory / f"{name}.json"
    handle = ProcessHandle(
        name=name,
        args=[sys.executable, str(Path(__file__)), role, "--state-file", str(state_file), *args],
        directory=group.directory,
        state_file=state_file,
    )
    group.handles.append(handle)
    handle.wait_ready(timeout=30)
    return handle


def read_spans(path: Path) -> list[dict[str, Any]]:
    """The spans the receiver wrote so far."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.endswith("}")]


# The receiver.


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


class _Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, out: Path) -> None:
        self._out = out

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        lines = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    lines.append(
                        json.dumps(
                            {
                                "service": resource.get("service.name", ""),
                                "instance": resource.get("service.instance.id", ""),
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent_id": span.parent_span_id.hex(),
                                "name": span.name,
                                "kind": _KINDS.get(span.kind, str(span.kind)),
                                "attributes": {a.key: _value(a.value) for a in span.attributes},
                                "error": span.status.code == 2,
                            }
                        )
                    )
        with self._out.open("a", encoding="utf-8") as out:
            out.write("".join(line + "\n" for line in lines))
        return trace_service_pb2.ExportTraceServiceResponse()


async def _receive(out: Path, state_file: Path) -> None:
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Receiver(out), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    write_state_file(state_file, {"grpc": f"127.0.0.1:{port}"})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(2)


# The relay node.


class RelayNode(Node, crm_pb2_grpc.CustomersServicer):
    """Answers GetCustomer with the Echo of the customer id, asked through the bus."""

    kind = "relay"

    async def GetCustomer(
        self, request: crm_pb2.GetCustomerRequest, context: Any
    ) -> crm_pb2.Customer:
        echo = self.bus.stub(echo_pb2_grpc.EchoStub)
        reply = await echo.Echo(echo_pb2.EchoRequest(message=request.customer_id), timeout=5)
        return crm_pb2.Customer(customer_id=request.customer_id, name=reply.message)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=("receiver", "relay"))
    parser.add_argument("--state-file", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--bus")
    parser.add_argument("--id")
    parser.add_argument("--otlp-endpoint", default="")
    args = parser.parse_args(argv)
    if args.role == "receiver":
        asyncio.run(_receive(args.out, args.state_file))
        return
    configure_logging("INFO")
    config = NodeConfig(
        id=args.id,
        bus=parse_host_port(args.bus),
        state_file=args.state_file,
        otlp_endpoint=args.otlp_endpoint,
        deregister_delay=timedelta(0),
    )
    asyncio.run(run_node(RelayNode(), config))


if __name__ == "__main__":
    main(sys.argv[1:])
