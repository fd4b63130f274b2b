"""Fixtures of the IDL tests (helpers and paths: ``idl_support``)."""

from __future__ import annotations

import pytest
from google.protobuf.descriptor_pb2 import FileDescriptorSet
from idl_support import FIXTURES

from powerbus.adapters.corba.idl import compile_protos, generate_idl


@pytest.fixture(scope="session")
def fixture_descriptors() -> FileDescriptorSet:
    return compile_protos(FIXTURES)


@pytest.fixture(scope="session")
def fixture_idl(fixture_descriptors: FileDescriptorSet) -> str:
    return generate_idl(fixture_descriptors)
