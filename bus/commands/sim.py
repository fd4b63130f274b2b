"""``powerbus sim KIND``: simulators of the real systems the adapters talk to.

Each simulator is a command of the ``sim`` sub-app (``legacy-cis``, ``meters``, ``bank``).
Simulators listen on loopback by default, write a state file once
ready, and stop cleanly on SIGTERM/SIGINT with exit status 0.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from powerbus.bus.commands.common import configure_logging, exit_on_error
from powerbus.bus.kernel.addresses import parse_host_port

__all__ = ["sim_app"]

sim_app = typer.Typer(
    help="Simulators of the systems adapters talk to.\n\n"
    "Example: powerbus sim legacy-cis --ior-file cis.json",
    no_args_is_help=True,
    add_completion=False,
)


@sim_app.command("legacy-cis")
def legacy_cis_command(
    listen: Annotated[
        str, typer.Option("--listen", metavar="HOST:PORT", help="IIOP endpoint; port 0 picks one.")
    ] = "127.0.0.1:0",
    ior_file: Annotated[
        Path | None,
        typer.Option("--ior-file", metavar="PATH", help="Write {repository id: IOR} here as JSON."),
    ] = None,
    naming: Annotated[
        str | None,
        typer.Option(
            "--naming",
            metavar="URL",
            help="Bind in this naming service, e.g. corbaloc::127.0.0.1:2809/NameService.",
        ),
    ] = None,
    name: Annotated[
        str, typer.Option("--name", help="The name to bind.")
    ] = "LegacyCIS/CustomerService",
    customers: Annotated[
        int, typer.Option("--customers", min=1, help="How many customers to generate.")
    ] = 3000,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same customers.")] = 2003,
    state_file: Annotated[
        Path | None,
        typer.Option("--state-file", metavar="PATH", help='{"iiop": ..., "ior": ...} once ready.'),
    ] = None,
    idl: Annotated[
        Path | None,
        typer.Option("--idl", metavar="PATH", help="The CIS IDL [idl/legacy/LegacyCIS.idl]."),
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")
    ] = "INFO",
) -> None:
    """A legacy customer information system (LegacyCIS.idl) on a real omniORB server, with
    generated customers; reach it by its IOR file or through a naming service.

    Example:

    \b
        omniNames -start 2809 -datadir /tmp/names -ORBendPoint giop:tcp:127.0.0.1:2809 &
        powerbus sim legacy-cis --naming corbaloc::127.0.0.1:2809/NameService \\
            --ior-file cis.json --customers 3000
    """
    configure_logging(log_level)
    from powerbus.adapters.corba.sim.cis_server import SimSettings, run_simulator

    with exit_on_error():
        settings = SimSettings(
            listen=parse_host_port(listen, field="--listen"),
            ior_file=ior_file,
            naming=naming,
            name=name,
            customers=customers,
            seed=seed,
            state_file=state_file,
            idl=idl,
        )
        status = run_simulator(settings)
    _exit_after_orb(status)


@sim_app.command("meters")
def meters_command(
    meters: Annotated[int, typer.Option("--meters", min=1, help="How many meters.")] = 20,
    gateways: Annotated[
        int, typer.Option("--gateways", min=1, help="How many gateways (RS-485 lines).")
    ] = 2,
    lines: Annotated[
        str,
        typer.Option(
            "--lines",
            metavar="MIX",
            help="What the gateways speak: mixed (Modbus and DL/T 645 in turn), dlt645 or modbus.",
        ),
    ] = "mixed",
    baud: Annotated[int, typer.Option("--baud", min=300, help="Line speed, bit/s.")] = 9600,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same farm.")] = 2026,
    faults: Annotated[
        str,
        typer.Option(
            "--faults",
            metavar="SPEC",
            help="METER=FAULT[:ARG][,...];... e.g. M00003=no-answer;M00004=clock-jump:-600. "
            "Faults: no-answer exception garbage frozen rollover reset reverse clock-jump "
            "wire-break.",
        ),
    ] = "",
    state_file: Annotated[
        Path,
        typer.Option("--state-file", metavar="PATH", help="Where to write the state."),
    ] = Path("meters-sim.json"),
    meters_file: Annotated[
        Path | None,
        typer.Option("--meters-file", metavar="PATH", help="The meters CSV [STATE.meters.csv]."),
    ] = None,
    speed: Annotated[
        float, typer.Option("--speed", min=0.001, help="Simulated seconds per real second.")
    ] = 1.0,
    start: Annotated[
        str | None,
        typer.Option("--start", metavar="ISO", help="Simulated start, e.g. 2026-12-01T00:00Z."),
    ] = None,
    turnaround_ms: Annotated[
        float, typer.Option("--turnaround-ms", min=0, help="Meter reply delay on the line.")
    ] = 5.0,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    log_level: Annotated[
        str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")
    ] = "INFO",
) -> None:
    """A farm of meters behind serial gateways: SDM630/SDM120 and 8-channel pulse terminals
    on Modbus TCP, DL/T 645-2007 meters on transparent gateways, with load profiles, TOU
    registers, serial-line timing, stored history and injectable faults (a JSON-lines
    control endpoint; see docs/metering.md).

    Example:

    \b
        powerbus sim meters --meters 200 --gateways 4 --speed 60 --state-file farm.json
    """
    configure_logging(log_level)
    from powerbus.adapters.meters.sim import FarmSettings, LineMix, run_farm
    from powerbus.bus.kernel.errors import InvalidArgument

    with exit_on_error():
        try:
            mix = LineMix(lines)
        except ValueError:
            raise InvalidArgument(
                "--lines", f"{lines!r} is none of {', '.join(m.value for m in LineMix)}"
            ) from None
        try:
            when = datetime.fromisoformat(start.replace("Z", "+00:00")) if start else None
        except ValueError:
            raise InvalidArgument("--start", f"not an ISO time: {start!r}") from None
        if when is not None and when.tzinfo is None:
            raise InvalidArgument("--start", "give a UTC offset, e.g. 2026-12-01T00:00+08:00")
        settings = FarmSettings(
            meters=meters,
            gateways=gateways,
            lines=mix,
            baud=baud,
            seed=seed,
            faults=faults,
            state_file=state_file,
            meters_file=meters_file,
            speed=speed,
            start=when,
            turnaround=turnaround_ms / 1000,
            host=host,
        )
        raise typer.Exit(run_farm(settings))


@sim_app.command("bank")
def bank_command(
    bank: Annotated[str, typer.Option("--bank", metavar="CODE", help="Bank code, e.g. 0102.")],
    connect: Annotated[
        str, typer.Option("--connect", metavar="HOST:PORT", help="The utility's bank node.")
    ],
    listen: Annotated[
        str,
        typer.Option(
            "--listen", metavar="HOST:PORT", help="Status queries and statement downloads here."
        ),
    ] = "127.0.0.1:0",
    rate: Annotated[
        float, typer.Option("--rate", min=0.001, help="Collections per second.")
    ] = 10.0,
    count: Annotated[
        int | None, typer.Option("--count", min=0, help="Stop sending after this many.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same run.")] = 1,
    accounts: Annotated[
        int, typer.Option("--accounts", min=1, help="Generated account ids 3100000001…")
    ] = 100,
    accounts_file: Annotated[
        Path | None,
        typer.Option("--accounts-file", metavar="PATH", help="Account ids, one a line."),
    ] = None,
    drop_dir: Annotated[
        Path | None,
        typer.Option("--drop-dir", metavar="DIR", help="Statements and withholding files here."),
    ] = None,
    statement_format: Annotated[
        str, typer.Option("--format", help="Statement files: fixed (GBK) or csv.")
    ] = "fixed",
    statement_interval: Annotated[
        float, typer.Option("--statement-interval", min=0.05, help="Seconds between rewrites.")
    ] = 5.0,
    faults: Annotated[
        str,
        typer.Option(
            "--faults",
            metavar="SPEC",
            help="e.g. latency=5-50,lost_reply=0.02,resend=0.5,duplicate=0.02,malformed=0.01",
        ),
    ] = "",
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.001, help="Deadline of each call, seconds.")
    ] = 5.0,
    cutoff: Annotated[
        str | None,
        typer.Option("--cutoff", metavar="HH:MM", help="Later collections settle next day."),
    ] = None,
    key_hex: Annotated[
        str | None,
        typer.Option("--key-hex", envvar="POWERBUS_BANK_KEY", help="MAC key, hex [demo key]."),
    ] = None,
    state_file: Annotated[
        Path | None,
        typer.Option(
            "--state-file", metavar="PATH", help='{"listen": ...} once ready; stats at exit.'
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")
    ] = "INFO",
) -> None:
    """A bank collecting electricity payments (代收) over its own protocol: it dials the
    utility's bank node, sends collections with latency, lost replies (resolved by resend
    or reversal), duplicate serials and malformed messages, answers status queries and
    statement downloads, writes daily statement files and withholding result files.

    Example:

    \b
        powerbus sim bank --bank 0102 --connect 127.0.0.1:9100 --rate 50 --count 1000 \\
            --drop-dir drop --faults lost_reply=0.02,duplicate=0.01 --state-file bank.json
    """
    import datetime as dt

    from powerbus.adapters.bank.sim import FaultPlan, SimSettings, run_simulator
    from powerbus.adapters.bank.statement.model import StatementFormat
    from powerbus.bus.kernel.errors import InvalidArgument

    configure_logging(log_level)
    with exit_on_error():
        if accounts_file is not None:
            ids = tuple(s for s in accounts_file.read_text(encoding="utf-8").split() if s)
        else:
            ids = tuple(f"31{n:08d}" for n in range(1, accounts + 1))
        if not ids:
            raise InvalidArgument("--accounts-file", "no account ids in it")
        try:
            fmt = StatementFormat(statement_format)
            cut = dt.time.fromisoformat(cutoff) if cutoff else None
            key = bytes.fromhex(key_hex) if key_hex else None
        except ValueError as exc:
            raise InvalidArgument("--format/--cutoff/--key-hex", str(exc)) from None
        settings = SimSettings(
            bank_code=bank,
            connect=parse_host_port(connect, field="--connect"),
            listen=parse_host_port(listen, field="--listen"),
            key=key,
            rate=rate,
            count=count,
            accounts=ids,
            seed=seed,
            drop_dir=drop_dir,
            statement_format=fmt,
            statement_interval=dt.timedelta(seconds=statement_interval),
            faults=FaultPlan.parse(faults),
            timeout=dt.timedelta(seconds=timeout),
            cutoff=cut,
            state_file=state_file,
        )
        raise typer.Exit(run_simulator(settings))


def _exit_after_orb(status: int) -> NoReturn:
    """End the process once the ORB has been shut down and destroyed, without the
    interpreter's finalization: omniORB's native threads can race the C++ static
    destructors there, and once in a full test run the process aborted
    ("terminate called without an active exception", status -6) after a clean stop."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
