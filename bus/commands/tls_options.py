"""The TLS flags shared by ``powerbus bus``, ``powerbus node`` and the client commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["InsecureOption", "TlsCaOption", "TlsCertOption", "TlsKeyOption"]

TlsCertOption = Annotated[
    Path | None,
    typer.Option(
        "--tls-cert",
        help="PEM certificate to serve (and present as client) with; re-read when rotated.",
    ),
]
TlsKeyOption = Annotated[
    Path | None, typer.Option("--tls-key", help="PEM private key of --tls-cert.")
]
TlsCaOption = Annotated[
    Path | None,
    typer.Option(
        "--tls-ca",
        help="PEM CA bundle; peers must present a certificate it signed (mTLS).",
    ),
]
InsecureOption = Annotated[
    bool | None,
    typer.Option(
        "--insecure/--no-insecure",
        help="Allow plaintext beyond loopback addresses (warned about at every start). [off]",
        show_default=False,
    ),
]
