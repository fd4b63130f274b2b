"""Typed, frozen configuration, resolved once at the edge of a process.

Precedence, highest first: command-line flags, ``POWERBUS_<FIELD>`` environment variables,
then the ``[section]`` of a TOML file given with ``--config``. The resolved object is
passed explicitly to whatever needs it; nothing reads the environment later.

>>> import dataclasses
>>> @dataclasses.dataclass(frozen=True, kw_only=True)
... class Settings:
...     section = "demo"
...     interval: timedelta = timedelta(seconds=1)
>>> resolve(Settings, env={"POWERBUS_INTERVAL": "5s"}).interval.total_seconds()
5.0
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import types
import typing
from collections.abc import Mapping
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from powerbus.bus.kernel.addresses import HostPort, parse_host_port
from powerbus.bus.kernel.errors import ConfigError, InvalidArgument

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["parse_duration", "read_toml", "resolve"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str | float | int, *, field: str = "duration") -> timedelta:
    """``"250ms"``, ``"10s"``, ``"5m"``, ``"1h"`` or a number of seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return timedelta(seconds=float(text))
    match = _DURATION.match(str(text))
    if not match:
        raise ConfigError(f"{field}: not a duration (like 250ms, 10s, 5m): {text!r}")
    return timedelta(seconds=float(match[1]) * _UNIT_SECONDS[match[2]])


T = TypeVar("T")


def resolve(
    cls: type[T],
    *,
    flags: Mapping[str, object | None] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> T:
    """Build ``cls`` (a frozen config dataclass) from flags > environment > TOML file.

    Flags whose value is ``None`` were not given. Unknown keys in the TOML section are an
    error, so a typo does not silently fall back to a default.
    """
    env = os.environ if env is None else env
    section: str = getattr(cls, "section", "")
    file_values = _read_section(config_file, section) if config_file else {}
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(file_values) - names)
    if unknown:
        raise ConfigError(f"{config_file}: unknown key(s) in [{section}]: {', '.join(unknown)}")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for name in names:
        for source, raw in (
            ("flag --" + name.replace("_", "-"), (flags or {}).get(name)),
            ("POWERBUS_" + name.upper(), env.get("POWERBUS_" + name.upper())),
            (f"{config_file} [{section}] {name}", file_values.get(name)),
        ):
            if raw is not None:
                values[name] = _convert(hints[name], raw, source)
                break
    return cls(**values)


def read_toml(path: str | os.PathLike[str], *, what: str = "config file") -> dict[str, Any]:
    """The TOML document at ``path``; a missing or malformed file is a :class:`ConfigError`
    that names the file (``what`` says which kind of file it is: "policy file", ...)."""
    try:
        with open(path, "rb") as f:
            document: dict[str, Any] = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{what} {path}: {exc.strerror}") from None
    return document


def _read_section(path: str | os.PathLike[str], section: str) -> dict[str, Any]:
    table = read_toml(path).get(section, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{section}] must be a table")
    return table


def _convert(hint: Any, raw: object, source: str) -> object:
    target = _strip_optional(hint)
    if isinstance(raw, target if isinstance(target, type) else ()):
        return raw
    try:
        if target is HostPort:
            return parse_host_port(str(raw), field=source)
        if target is timedelta:
            return parse_duration(raw, field=source)  # type: ignore[arg-type]
        if target is Path:
            return Path(str(raw))
        if target is bool:
            return str(raw).strip().lower() in {"1", "true", "yes", "on"}
        if isinstance(target, type) and issubclass(target, Enum):
            return _convert_enum(target, raw)
        if target in (int, float, str):
            return target(raw)
    except InvalidArgument as exc:
        raise ConfigError(exc.message) from None  # already names the source
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    raise ConfigError(f"{source}: unsupported setting type {hint!r}")


def _convert_enum(target: type[Enum], raw: object) -> Enum:
    text = str(raw).strip()
    for member in target:
        if text in (member.value, member.name, member.name.lower()):
            return member
    choices = ", ".join(str(m.value) for m in target)
    raise ValueError(f"expected one of {choices}, got {raw!r}")


def _strip_optional(hint: Any) -> Any:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0] if len(args) == 1 else hint
    return hint
