"""``powerbus sim KIND``: simulators of the real systems the adapters talk to.

Each simulator is a command of the ``sim`` sub-app (``legacy-cis`` here; ``meters`` and
``bank`` join it). Simulators listen on loopback by default, write a state file once
ready, and stop cleanly on SIGTERM/SIGINT with exit status 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
        raise typer.Exit(run_simulator(settings))
