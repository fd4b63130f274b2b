"""A CORBA client of the bus that knows nothing of powerbus but its IDL.

It imports only omniORBpy and the stubs omniidl compiled from ``idl/powerbus.idl``
(a top-level ``powerbus`` package of stubs: run it with ``python -S`` and a sys.path of
the stubs and omniORB, as tests/corba/conftest.py does). It runs one scenario against
the gateway, found by its IOR file or a naming service, and prints the results as JSON.

    python -S corba_client.py STUBS OMNIORB_SITE (ior:FILE | naming:URL) SCENARIO [ARG]
"""

import json
import sys

sys.path[:0] = [sys.argv[1], sys.argv[2]]

import CosNaming  # noqa: E402
import omniORB  # noqa: E402
from google.protobuf import Duration  # noqa: E402
from omniORB import CORBA  # noqa: E402

import powerbus  # noqa: E402  (the stubs, not the bus)
import powerbus.common.v1 as common  # noqa: E402
import powerbus.crm.v1 as crm  # noqa: E402
import powerbus.echo.v1 as echo  # noqa: E402

assert powerbus.__file__.startswith(sys.argv[1]), powerbus.__file__
assert "powerbus.bus" not in sys.modules

ORB_ARGS = [
    "client",
    "-ORBnativeCharCodeSet",
    "UTF-8",
    "-ORBclientCallTimeOutPeriod",
    "15000",
    "-ORBclientConnectTimeOutPeriod",
    "5000",
    "-ORBendPoint",
    "giop:tcp:127.0.0.1:",
]


def resolve(orb, where, repo_id, path, interface):
    kind, _, value = where.partition(":")
    if kind == "ior":
        with open(value, encoding="utf-8") as f:
            obj = orb.string_to_object(json.load(f)[repo_id])
    else:
        root = orb.string_to_object(value)._narrow(CosNaming.NamingContext)
        name = [CosNaming.NameComponent(part, "") for part in path.split("/")]
        obj = root.resolve(name)
    return obj._narrow(interface)


def echo_scenario(orb, where, _arg):
    svc = resolve(orb, where, "IDL:powerbus/echo/v1/Echo:1.0", "powerbus/echo/v1/Echo", echo.Echo)
    no_delay = Duration(0, 0)
    reply = svc.Echo_(echo.EchoRequest("你好, 电网", b"\x00\x01\xff", no_delay, 0))
    expanded = svc.Expand(echo.ExpandRequest("tick", 3, no_delay))
    collected = svc.Collect([echo.EchoRequest(m, b"", no_delay, 0) for m in ("a", "b", "c")])
    chat = svc.Chat([echo.EchoRequest(m, b"", no_delay, 0) for m in ("x", "y")])
    metadata = {entry.key: entry.value for entry in reply.metadata}
    errors = {}
    for code in (3, 5, 6, 9, 14):
        try:
            svc.Echo_(echo.EchoRequest("fail", b"", no_delay, code))
            errors[code] = "no exception"
        except CORBA.SystemException as exc:
            errors[code] = [type(exc).__name__, exc.minor]
        except CORBA.UserException as exc:
            errors[code] = [exc._NP_RepositoryId, exc.message]
    return {
        "message": reply.message,
        "payload": list(reply.payload),
        "node_id": reply.node_id,
        "metadata": metadata,
        "expanded": [(r.message, r.index) for r in expanded],
        "collected": collected.message,
        "chat": [r.message for r in chat],
        "errors": errors,
    }


def crm_scenario(orb, where, customer_id):
    svc = resolve(
        orb, where, "IDL:powerbus/crm/v1/Customers:1.0", "powerbus/crm/v1/Customers", crm.Customers
    )
    customer = svc.GetCustomer(crm.GetCustomerRequest(customer_id))
    everything = common.PageRequest(0, "")  # no page: all of the customer's accounts
    request = crm.ListAccountsRequest(customer_id, True, "", [], everything)
    accounts = svc.ListAccounts(request).accounts
    try:
        svc.GetCustomer(crm.GetCustomerRequest("0000000000"))
        missing = "no exception"
    except powerbus.NotFound as exc:
        missing = ["NotFound", exc.message]
    return {
        "customer": {
            "customer_id": customer.customer_id,
            "name": customer.name,
            "kind": str(customer.kind),
            "phones": list(customer.phones),
            "important": bool(customer.important),
            "created_at": [customer.created_at.seconds, customer.created_at.nanos],
            "account_ids": list(customer.account_ids),
        },
        "accounts": [
            {
                "account_id": a.account_id,
                "status": str(a.status),
                "fen": a.balance.fen,
                "opened_at": a.opened_at.seconds,
                "meters": [m.meter_id for m in a.meters],
            }
            for a in accounts
        ],
        "missing": missing,
    }


def timeout_scenario(orb, where, _arg):
    svc = resolve(orb, where, "IDL:powerbus/echo/v1/Echo:1.0", "powerbus/echo/v1/Echo", echo.Echo)
    try:
        svc.Echo_(echo.EchoRequest("stalled?", b"", Duration(0, 0), 0))
    except CORBA.SystemException as exc:
        return {"exception": type(exc).__name__, "minor": exc.minor}
    return {"exception": None}


def loop_scenario(orb, where, count):
    """Unary echo ``count`` times (the benchmark's CORBA side): latencies in seconds."""
    import time

    svc = resolve(orb, where, "IDL:powerbus/echo/v1/Echo:1.0", "powerbus/echo/v1/Echo", echo.Echo)
    request = echo.EchoRequest("bench", b"x" * 64, Duration(0, 0), 0)
    for _ in range(50):
        svc.Echo_(request)
    latencies = []
    cpu = time.process_time()
    for _ in range(int(count)):
        started = time.perf_counter()
        svc.Echo_(request)
        latencies.append(time.perf_counter() - started)
    return {"latencies": latencies, "client_cpu_s": time.process_time() - cpu}


SCENARIOS = {
    "echo": echo_scenario,
    "crm": crm_scenario,
    "timeout": timeout_scenario,
    "loop": loop_scenario,
}


def main():
    where, scenario = sys.argv[3], sys.argv[4]
    argument = sys.argv[5] if len(sys.argv) > 5 else ""
    orb = CORBA.ORB_init(ORB_ARGS, CORBA.ORB_ID)
    try:
        result = SCENARIOS[scenario](orb, where, argument)
    finally:
        orb.destroy()
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    del omniORB  # imported to prove it is all the client needs
    main()
