"""Tariff files: one TOML file per tariff id, holding every version of it.

::

    tariff_id = "cn-beijing-residential"      # must match the file name
    name = "北京 居民生活 一户一表"
    customer_class = "residential"
    voltage_level = "below_1kv"
    region = "北京"

    [[versions]]                              # ascending by effective_from
    effective_from = 2012-07-01
    energy_price = "0.4883"
    ...

The top-level fields are shared by every version (a version may override them); each
``[[versions]]`` table holds the rest of the dict form of :mod:`._codec`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from powerbus.bus.kernel.config import read_toml
from powerbus.nodes.billing.tariff._codec import tariff_from_dict, tariff_to_dict
from powerbus.nodes.billing.tariff._errors import InvalidTariff
from powerbus.nodes.billing.tariff._model import Tariff

__all__ = ["dump_tariff_file", "load_tariff_file", "tariff_versions_from_dict"]

_SHARED = ("tariff_id", "name", "customer_class", "voltage_level", "region")


def load_tariff_file(path: str | os.PathLike[str]) -> tuple[Tariff, ...]:
    """Every version in the tariff file at ``path``, oldest first.

    A missing or malformed file is a :class:`~powerbus.bus.kernel.errors.ConfigError`; a
    file that reads but is wrong is an :class:`InvalidTariff` naming it, the field and why.
    """
    source = os.fspath(path)
    versions = tariff_versions_from_dict(read_toml(path, what="tariff file"), source=source)
    stem = Path(path).stem
    if versions[0].tariff_id != stem:
        raise InvalidTariff(
            source, "tariff_id", f"{versions[0].tariff_id!r} differs from the file name {stem!r}"
        )
    return versions


def tariff_versions_from_dict(doc: Mapping[str, Any], *, source: str) -> tuple[Tariff, ...]:
    """The versions of one tariff from its file form (already parsed TOML)."""
    unknown = sorted(set(doc) - {*_SHARED, "versions"})
    if unknown:
        raise InvalidTariff(source, unknown[0], "unknown field (version fields go in [[versions]])")
    raw = doc.get("versions")
    if not isinstance(raw, list) or not raw:
        raise InvalidTariff(source, "versions", "missing: a tariff file needs [[versions]]")
    shared = {k: doc[k] for k in _SHARED if k in doc}
    versions: list[Tariff] = []
    for i, version in enumerate(raw):
        path = f"versions[{i}]"
        if not isinstance(version, Mapping):
            raise InvalidTariff(source, path, "must be a table")
        tariff = tariff_from_dict({**shared, **version}, source=source, path=path)
        if versions:
            _check_follows(versions[-1], tariff, source=source, path=path)
        versions.append(tariff)
    return tuple(versions)


def _check_follows(previous: Tariff, tariff: Tariff, *, source: str, path: str) -> None:
    if tariff.tariff_id != previous.tariff_id:
        raise InvalidTariff(source, f"{path}.tariff_id", "every version must have one tariff_id")
    if tariff.effective_from <= previous.effective_from:
        raise InvalidTariff(
            source,
            f"{path}.effective_from",
            f"{tariff.effective_from} is not after the previous version's "
            f"{previous.effective_from}: versions must ascend",
        )
    if previous.effective_to is not None and previous.effective_to > tariff.effective_from:
        raise InvalidTariff(
            source,
            f"{path}.effective_from",
            f"overlaps the previous version, in force until {previous.effective_to}",
        )


def dump_tariff_file(versions: Sequence[Tariff]) -> str:
    """The TOML text of a tariff file holding ``versions``; :func:`load_tariff_file` reads
    it back to equal versions. Shared fields are written once, from the first version."""
    dicts = [tariff_to_dict(v) for v in versions]
    shared = {k: dicts[0][k] for k in _SHARED if k in dicts[0]}
    lines = [f"{key} = {_value(value)}" for key, value in shared.items()]
    for d in dicts:
        lines += ["", "[[versions]]"]
        for key, value in d.items():
            if shared.get(key) == value:
                continue
            if isinstance(value, list):
                lines.append(f"{key} = [")
                lines += [f"  {_value(row)}," for row in value]
                lines.append("]")
            else:
                lines.append(f"{key} = {_value(value)}")
    return "\n".join(lines) + "\n"


def _value(value: object) -> str:
    """One TOML value; JSON's string escapes are all valid TOML basic-string escapes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        # JSON leaves DEL as it is; TOML wants every control character escaped.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {value!r}")
