"""``powerbus certs``: a development CA and the bus/node certificates it signs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from powerbus.bus.commands.common import exit_on_error
from powerbus.bus.kernel.certificates import IdentityKind, init_ca, issue

__all__ = ["certs_app"]

certs_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)

DirOption = Annotated[
    Path,
    typer.Option("--dir", help="Directory of the CA (ca.pem, ca.key) and the certificates."),
]


@certs_app.command("init")
def init_command(
    directory: DirOption = Path("certs"),
    days: Annotated[int, typer.Option("--days", help="Validity of the CA, in days.")] = 365,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing CA (orphans its certificates).")
    ] = False,
) -> None:
    """Make a development CA: DIR/ca.pem and DIR/ca.key (written 0600).

    For development and tests; in production use your organisation's CA and give its
    files to --tls-ca.

    Example:

    \b
        powerbus certs init --dir certs
        powerbus certs issue bus main --dir certs
        powerbus certs issue node echo-1 --dir certs
        powerbus bus --tls-cert certs/bus-main.pem --tls-key certs/bus-main.key \\
            --tls-ca certs/ca.pem
    """
    with exit_on_error():
        path = init_ca(directory, days=days, force=force)
    typer.echo(f"CA written: {path} (key {path.with_name('ca.key')}, mode 0600)")


@certs_app.command("issue")
def issue_command(
    kind: Annotated[IdentityKind, typer.Argument(help="bus, node or client.", show_default=False)],
    name: Annotated[
        str,
        typer.Argument(
            help="The bus's name, the node id or the client's name.", show_default=False
        ),
    ],
    directory: DirOption = Path("certs"),
    host: Annotated[
        list[str] | None,
        typer.Option("--host", help="Another DNS name or IP the holder serves on (repeatable)."),
    ] = None,
    days: Annotated[int, typer.Option("--days", help="Validity, in days.")] = 90,
) -> None:
    """Issue DIR/KIND-NAME.pem and .key (0600), signed by the CA in DIR.

    The certificate names spiffe://powerbus/KIND/NAME (URI SAN; also the common name),
    localhost and 127.0.0.1; it serves as both server and client certificate. Issuing
    again replaces the files atomically: a running bus or node picks the new pair up on
    its next handshake (rotation without restart).

    Example:

    \b
        powerbus certs issue node billing-1 --dir certs --host billing.internal
    """
    with exit_on_error():
        issued = issue(directory, kind, name, hosts=tuple(host or ()), days=days)
    typer.echo(f"{issued.name}: {issued.cert} (key {issued.key}, mode 0600)")
