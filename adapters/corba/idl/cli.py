"""``powerbus idl generate|check``: the bus's CORBA face, generated from the protos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from google.protobuf.descriptor_pb2 import FileDescriptorSet

from powerbus.adapters.corba.idl.compat import Finding, compare
from powerbus.adapters.corba.idl.drift import idl_diff
from powerbus.adapters.corba.idl.generate import generate_idl
from powerbus.adapters.corba.idl.protoc import compile_protos
from powerbus.adapters.corba.idl.reference import load_reference
from powerbus.bus.kernel.errors import PowerbusError

__all__ = ["app"]

app = typer.Typer(
    help=(
        "Generate the bus's CORBA IDL from the protos, or check the committed IDL.\n\n"
        "Example: powerbus idl generate && powerbus idl check --against HEAD~1"
    ),
    no_args_is_help=True,
    add_completion=False,
)

ProtosOption = Annotated[
    Path, typer.Option("--protos", help="Import root of the .proto files.", file_okay=False)
]
DEFAULT_IDL = Path("idl/powerbus.idl")


@app.command()
def generate(
    protos: ProtosOption = Path("protos"),
    out: Annotated[Path, typer.Option("--out", help="Where to write the IDL.", dir_okay=False)] = (
        DEFAULT_IDL
    ),
) -> None:
    """Write the IDL generated from the protos (deterministic: same protos, same bytes).

    Example: powerbus idl generate --protos protos --out idl/powerbus.idl
    """
    text = _generate(protos)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and out.read_text(encoding="utf-8") == text:
        typer.echo(f"{out} is up to date")
        return
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}")


@app.command()
def check(
    protos: ProtosOption = Path("protos"),
    idl: Annotated[Path, typer.Option("--idl", help="The committed IDL.", dir_okay=False)] = (
        DEFAULT_IDL
    ),
    against: Annotated[
        str | None,
        typer.Option(
            "--against",
            metavar="REF",
            help="Also report breaking changes since REF: a git revision (HEAD~1, main), "
            "a folder of protos, or a FileDescriptorSet file.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="With --against: the findings as JSON.")
    ] = False,
) -> None:
    """Exit 1 with a unified diff when the committed IDL differs from what the protos give;
    with --against, also exit 1 when the protos or the IDL broke compatibility with REF.

    Example: powerbus idl check --against HEAD~1
    """
    descriptors = _compile(protos)
    diff = idl_diff(_render(descriptors), idl)
    if diff:
        typer.echo(diff, nl=False)
        typer.echo(
            f"{idl} is out of date with {protos}/: run `powerbus idl generate` and commit "
            "the result",
            err=True,
        )
    elif not as_json:
        typer.echo(f"{idl} matches the protos")
    breaking = False
    if against is not None:
        try:
            reference = load_reference(against, protos_dir=protos)
        except PowerbusError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            raise typer.Exit(code=2) from exc
        findings = compare(reference, descriptors)
        breaking = any(f.breaking for f in findings)
        _report(findings, against=against, as_json=as_json)
    if diff or breaking:
        raise typer.Exit(code=1)


def _report(findings: list[Finding], *, against: str, as_json: bool) -> None:
    if as_json:
        rows = [f.as_dict() for f in findings]
        typer.echo(json.dumps({"against": against, "findings": rows}, ensure_ascii=False, indent=2))
        return
    for finding in findings:
        typer.echo(finding.line())
    broken = sum(f.breaking for f in findings)
    warned = len(findings) - broken
    if broken:
        typer.echo(f"{broken} breaking change(s) since {against} ({warned} warning(s))", err=True)
    else:
        typer.echo(f"compatible with {against} ({warned} warning(s))")


def _compile(protos: Path) -> FileDescriptorSet:
    try:
        return compile_protos(protos)
    except PowerbusError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(code=2) from exc


def _render(descriptors: FileDescriptorSet) -> str:
    return generate_idl(descriptors)


def _generate(protos: Path) -> str:
    return _render(_compile(protos))
