"""Checking the FileDescriptorSet a node registers: it parses, it builds, it names its services.

>>> files = check_descriptor_set(b"", services=())
>>> files
()
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message import DecodeError

from powerbus.bus.kernel.errors import InvalidArgument

__all__ = ["check_descriptor_set", "parse_files"]

FIELD = "file_descriptor_set"


def parse_files(data: bytes) -> tuple[descriptor_pb2.FileDescriptorProto, ...]:
    """The files of a serialized set, unchecked (for sets the registry already accepted)."""
    if not data:
        return ()
    return tuple(descriptor_pb2.FileDescriptorSet.FromString(data).file)


def check_descriptor_set(
    data: bytes, *, services: Sequence[str]
) -> tuple[descriptor_pb2.FileDescriptorProto, ...]:
    """Parse ``data`` and build its files into a fresh pool; every service must be in it.

    Raises :class:`InvalidArgument` naming ``file_descriptor_set`` (set does not parse, a
    file does not build, an import is missing) or ``services[i]`` (not described).
    """
    try:
        files = parse_files(data)
    except DecodeError as exc:
        raise InvalidArgument(FIELD, f"not a serialized FileDescriptorSet ({exc})") from None
    pool = _build_pool(_unique_by_name(files))
    for index, name in enumerate(services):
        try:
            pool.FindServiceByName(name)
        except KeyError:
            raise InvalidArgument(
                f"services[{index}]", f"{name!r} is not described in file_descriptor_set"
            ) from None
    return files


def _unique_by_name(
    files: Sequence[descriptor_pb2.FileDescriptorProto],
) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    by_name: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for index, file in enumerate(files):
        if not file.name:
            raise InvalidArgument(FIELD, f"file[{index}] has no name")
        earlier = by_name.setdefault(file.name, file)
        if earlier is not file and earlier != file:
            raise InvalidArgument(FIELD, f"{file.name!r} appears twice with different content")
    return by_name


def _build_pool(
    pending: dict[str, descriptor_pb2.FileDescriptorProto],
) -> descriptor_pool.DescriptorPool:
    # A pool only accepts a file once its imports are in, and protoc does not promise any
    # order, so add whatever is ready until nothing is left (or nothing moves).
    pool = descriptor_pool.DescriptorPool()
    built: set[str] = set()
    while pending:
        ready = [f for f in pending.values() if all(d in built for d in f.dependency)]
        if not ready:
            raise InvalidArgument(FIELD, _why_stuck(pending, built))
        for file in ready:
            try:
                pool.Add(file)
            except (TypeError, ValueError) as exc:
                raise InvalidArgument(FIELD, f"{file.name!r} does not build: {exc}") from None
            built.add(file.name)
            del pending[file.name]
    return pool


def _why_stuck(pending: dict[str, descriptor_pb2.FileDescriptorProto], built: set[str]) -> str:
    for file in pending.values():
        missing = [d for d in file.dependency if d not in built and d not in pending]
        if missing:
            return f"{file.name!r} imports {missing[0]!r}, which the set does not hold"
    return f"import cycle among {sorted(pending)}"
