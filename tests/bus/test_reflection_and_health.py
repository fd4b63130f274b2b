"""What generic clients see: reflection over every registered service, and health."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from powerbus.bus.dynamic_call import ReflectionClient


def test_reflection_lists_every_registered_service(bus, node_factory):
    node_factory("echo", bus=bus, node_id="echo-1")
    with grpc.insecure_channel(bus.grpc) as channel:
        services = ReflectionClient(channel, timeout=5).list_services()
    assert {
        "powerbus.echo.v1.Echo",
        "powerbus.registry.v1.Registry",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= set(services)


def test_reflection_describes_a_registered_method(bus, node_factory):
    node_factory("echo", bus=bus, node_id="echo-1")
    with grpc.insecure_channel(bus.grpc) as channel:
        call = ReflectionClient(channel, timeout=5).resolve("powerbus.echo.v1.Echo/Expand")
    assert call.method.server_streaming and not call.method.client_streaming
    assert call.request_class.DESCRIPTOR.full_name == "powerbus.echo.v1.ExpandRequest"


def test_health_of_the_bus_and_of_a_service(bus, node_factory):
    node = node_factory("echo", bus=bus, node_id="echo-1")
    with grpc.insecure_channel(bus.grpc) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status == 1
        status = _wait_for_status(
            health, "powerbus.echo.v1.Echo", health_pb2.HealthCheckResponse.SERVING
        )
        assert status == health_pb2.HealthCheckResponse.SERVING
        node.stop()
        status = _wait_for_status(
            health, "powerbus.echo.v1.Echo", health_pb2.HealthCheckResponse.NOT_SERVING
        )
        assert status == health_pb2.HealthCheckResponse.NOT_SERVING


def _wait_for_status(health, service, wanted, attempts=100):
    # Health follows the directory, which follows registrations: poll a bounded number of times.
    status = None
    watch = health.Watch(health_pb2.HealthCheckRequest(service=service), timeout=10)
    try:
        for _, reply in zip(range(attempts), watch, strict=False):
            status = reply.status
            if status == wanted:
                break
    finally:
        watch.cancel()
    return status
