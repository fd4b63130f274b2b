"""CORBA for powerbus (omniORBpy): the ORB with mandatory timeouts, IDL stubs compiled at
run time, proto <-> IDL conversion, the gRPC <-> CORBA error table, naming, and legacy
systems served as bus services (``legacy``) with a simulator of one (``sim``).

>>> from powerbus.adapters.corba import OrbConfig
>>> OrbConfig().call_timeout.total_seconds()
10.0

omniORB is imported only when an ORB, stubs or a CORBA value is actually needed.
"""

from powerbus.adapters.corba.codec import IdlCodec, MessageCodec
from powerbus.adapters.corba.errors import (
    POWERBUS_VMCID,
    corba_exception_for_status,
    error_for_corba_exception,
    status_for_corba_exception,
)
from powerbus.adapters.corba.ior import (
    ObjectRef,
    parse_ior,
    read_ior_file,
    repository_id,
    write_ior_file,
)
from powerbus.adapters.corba.naming import NamingService
from powerbus.adapters.corba.orb import Orb, OrbConfig
from powerbus.adapters.corba.schema import CorbaSchema, Interface, Operation
from powerbus.adapters.corba.stubs import Stubs, load_stubs

__all__ = [
    "POWERBUS_VMCID",
    "CorbaSchema",
    "IdlCodec",
    "Interface",
    "MessageCodec",
    "NamingService",
    "ObjectRef",
    "Operation",
    "Orb",
    "OrbConfig",
    "Stubs",
    "corba_exception_for_status",
    "error_for_corba_exception",
    "load_stubs",
    "parse_ior",
    "read_ior_file",
    "repository_id",
    "status_for_corba_exception",
    "write_ior_file",
]
