"""The one table between gRPC status codes and CORBA exceptions, both ways."""

from __future__ import annotations

import grpc
import pytest
from omniORB import CORBA

from powerbus.adapters.corba.errors import (
    POWERBUS_VMCID,
    STATUS_TO_SYSTEM,
    corba_exception_for_status,
    error_for_corba_exception,
    status_for_corba_exception,
)
from powerbus.bus.kernel.errors import DeadlineExceeded, InvalidArgument, NotFound, Unavailable

S = grpc.StatusCode


@pytest.mark.parametrize(
    ("code", "exception"),
    [
        (S.UNAVAILABLE, "TRANSIENT"),
        (S.DEADLINE_EXCEEDED, "TIMEOUT"),
        (S.INVALID_ARGUMENT, "BAD_PARAM"),
        (S.PERMISSION_DENIED, "NO_PERMISSION"),
        (S.UNIMPLEMENTED, "NO_IMPLEMENT"),
        (S.RESOURCE_EXHAUSTED, "NO_RESOURCES"),
        (S.INTERNAL, "INTERNAL"),
    ],
)
def test_system_exceptions_map_both_ways(code: grpc.StatusCode, exception: str) -> None:
    raised = corba_exception_for_status(code, "details")
    assert type(raised).__name__ == exception
    assert isinstance(raised, CORBA.SystemException)
    assert raised.minor == POWERBUS_VMCID | code.value[0]
    assert status_for_corba_exception(raised)[0] is code
    # The same exception raised by any other ORB (its own minor codes) maps by name.
    foreign = getattr(CORBA, exception)(0x41540001, CORBA.COMPLETED_NO)
    assert status_for_corba_exception(foreign)[0] is code


def test_codes_the_table_folds_come_back_exactly_from_powerbus() -> None:
    raised = corba_exception_for_status(S.OUT_OF_RANGE, "")
    assert type(raised).__name__ == "BAD_PARAM"
    assert status_for_corba_exception(raised)[0] is S.OUT_OF_RANGE
    foreign = CORBA.BAD_PARAM(0, CORBA.COMPLETED_NO)
    assert status_for_corba_exception(foreign)[0] is S.INVALID_ARGUMENT


def test_every_status_code_has_a_system_exception() -> None:
    assert set(STATUS_TO_SYSTEM) == set(S) - {S.OK}
    for code in STATUS_TO_SYSTEM:
        assert isinstance(corba_exception_for_status(code, ""), CORBA.SystemException)


def test_unlisted_system_exceptions_are_internal_and_connection_failures_unavailable() -> None:
    assert status_for_corba_exception(CORBA.MARSHAL(0, CORBA.COMPLETED_NO))[0] is S.INTERNAL
    for name in ("COMM_FAILURE", "OBJECT_NOT_EXIST", "INV_OBJREF"):
        exc = getattr(CORBA, name)(0, CORBA.COMPLETED_NO)
        assert status_for_corba_exception(exc)[0] is S.UNAVAILABLE


class NotFoundStub(CORBA.UserException):
    """Shaped like omniidl's stub of ::powerbus::NotFound."""

    _NP_RepositoryId = "IDL:powerbus/NotFound:1.0"

    def __init__(self, message: str) -> None:
        CORBA.UserException.__init__(self, message)
        self.message = message


def test_domain_codes_become_the_idl_user_exceptions_and_back() -> None:
    raised = corba_exception_for_status(
        S.NOT_FOUND, "customer 1 does not exist", user_exceptions={"NotFound": NotFoundStub}
    )
    assert isinstance(raised, NotFoundStub)
    assert raised.message == "customer 1 does not exist"
    assert status_for_corba_exception(raised) == (S.NOT_FOUND, "customer 1 does not exist")
    error = error_for_corba_exception(raised)
    assert isinstance(error, NotFound) and error.message == "customer 1 does not exist"


def test_a_legacy_user_exception_maps_by_its_repository_id() -> None:
    class Refused(CORBA.UserException):
        _NP_RepositoryId = "IDL:Legacy/Refused:1.0"

    codes = {"IDL:Legacy/Refused:1.0": S.PERMISSION_DENIED}
    assert status_for_corba_exception(Refused(), user_exceptions=codes)[0] is S.PERMISSION_DENIED
    assert status_for_corba_exception(Refused())[0] is S.UNKNOWN


def test_powerbus_errors_keep_their_retriability() -> None:
    assert isinstance(
        error_for_corba_exception(CORBA.TRANSIENT(0, CORBA.COMPLETED_NO)), Unavailable
    )
    timeout = error_for_corba_exception(CORBA.TIMEOUT(0, CORBA.COMPLETED_MAYBE))
    assert isinstance(timeout, DeadlineExceeded) and timeout.retriable
    assert isinstance(
        error_for_corba_exception(CORBA.BAD_PARAM(0, CORBA.COMPLETED_NO)), InvalidArgument
    )
