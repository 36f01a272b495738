"""Parsers for the values of ``corral.toml`` that have a syntax of their own.

Each takes the raw TOML value and returns the typed one, or raises
:class:`ValueProblem` saying what was expected; the caller adds the file, the
line, the section and the key.
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from corral.supervisor.config_schema import ReadySpec

__all__ = [
    "ValueProblem",
    "describe_value",
    "parse_address",
    "parse_command",
    "parse_environment",
    "parse_host_port",
    "parse_ready",
    "parse_signal",
    "resolve_path",
]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
_MAX_PORT = 65535
_READY_FORMS = '"none", "tcp:HOST:PORT", "http:URL", "file:PATH" or "notify"'


class ValueProblem(ValueError):
    """A value is malformed; the message says what was expected instead."""


def describe_value(value: Any) -> str:
    """How a TOML value reads in an error: its TOML type and, if short, the value."""
    names = {
        bool: "boolean",
        int: "integer",
        float: "float",
        str: "string",
        list: "array",
        dict: "table",
    }
    kind = names.get(type(value), "date/time")
    text = repr(value)
    return f"{kind} {text}" if len(text) <= 40 else kind


def parse_signal(value: Any) -> signal.Signals:
    """``"TERM"``, ``"SIGTERM"``, ``"term"`` or ``15`` -> ``signal.SIGTERM``."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return signal.Signals(value)
        except ValueError:
            raise ValueProblem(f"{value} is not a signal number on this system") from None
    if not isinstance(value, str):
        raise ValueProblem(f'expected a signal name such as "TERM", got {describe_value(value)}')
    name = value.strip().upper().removeprefix("SIG")
    try:
        return signal.Signals[f"SIG{name}"]
    except KeyError:
        valid = ", ".join(s.name.removeprefix("SIG") for s in _named_signals())
        raise ValueProblem(f"unknown signal {value!r}; use one of: {valid}") from None


def _named_signals() -> list[signal.Signals]:
    """Ordinary signals (no real-time ones), in number order."""
    return sorted((s for s in signal.Signals if not s.name.startswith("SIGRT")), key=int)


def parse_command(value: Any) -> tuple[str, ...]:
    """A list of strings is the argv; a string is run by ``/bin/sh -c``."""
    if isinstance(value, str):
        if not value.strip():
            raise ValueProblem("the command is empty; give the program to run")
        _reject_nul(value)
        return ("/bin/sh", "-c", value)
    if not isinstance(value, list) or not all(isinstance(arg, str) for arg in value):
        raise ValueProblem(
            "expected a list of strings (the argv) or a string run by /bin/sh -c, "
            f"got {describe_value(value)}"
        )
    if not value or not value[0].strip():
        raise ValueProblem("the command is empty; give the program to run as its first item")
    for arg in value:
        _reject_nul(arg)
    return tuple(value)


def parse_environment(value: Any) -> tuple[tuple[str, str], ...]:
    """A table ``{NAME = "value"}`` -> sorted ``(NAME, value)`` pairs.

    Numbers are accepted and written as TOML wrote them (``PORT = 8000``);
    booleans are not, since "true", "True" and "1" all have their followers.
    """
    if not isinstance(value, dict):
        raise ValueProblem(
            f'expected a table such as {{ NAME = "value" }}, got {describe_value(value)}'
        )
    pairs = []
    for name, item in value.items():
        if not _ENV_NAME.fullmatch(name):
            raise ValueProblem(
                f"{name!r} is not a valid environment variable name "
                "(letters, digits and _, not starting with a digit)"
            )
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise ValueProblem(
                f"{name}: expected a string, got {describe_value(item)}; quote the value"
            )
        _reject_nul(str(item))
        pairs.append((name, str(item)))
    return tuple(sorted(pairs))


def parse_host_port(text: str) -> tuple[str, int]:
    """``"127.0.0.1:8000"``, ``"localhost:80"`` or ``"[::1]:8000"`` -> (host, port)."""
    host, colon, port_text = text.rpartition(":")
    if not colon or not host:
        raise ValueProblem(f'{text!r} is not HOST:PORT (e.g. "127.0.0.1:8000", "[::1]:8000")')
    if not port_text.isdigit() or int(port_text) > _MAX_PORT:
        raise ValueProblem(f"port {port_text!r} in {text!r} is not a number from 0 to 65535")
    return _check_host(host, text), int(port_text)


def _check_host(host: str, text: str) -> str:
    if host.startswith("[") and host.endswith("]"):
        try:
            return str(ipaddress.IPv6Address(host[1:-1]))
        except ValueError:
            raise ValueProblem(f"{host} in {text!r} is not an IPv6 address") from None
    if ":" in host:
        raise ValueProblem(f"write the IPv6 address in {text!r} in brackets: [{host}]:PORT")
    if not _HOSTNAME.fullmatch(host):
        raise ValueProblem(f"{host!r} in {text!r} is not a host name or IPv4 address")
    return host


def parse_address(value: str, *, base_dir: Path) -> str:
    """A listening address: ``HOST:PORT`` (checked) or ``unix:PATH`` (made absolute)."""
    if value.startswith("unix:"):
        path = value.removeprefix("unix:")
        if not path.strip():
            raise ValueProblem('unix: needs a path, e.g. "unix:run/web.sock"')
        return "unix:" + resolve_path(path, base_dir=base_dir)
    parse_host_port(value)
    return value


def resolve_path(text: str, *, base_dir: Path) -> str:
    """``text`` made absolute against ``base_dir`` (``~`` expanded, not following links)."""
    if not text.strip():
        raise ValueProblem("the path is empty")
    _reject_nul(text)
    return os.path.normpath(base_dir / Path(text).expanduser())


def _reject_nul(text: str) -> None:
    # exec() and open() cannot take a NUL byte: better said here than at start time.
    if "\0" in text:
        raise ValueProblem(f"{text!r} contains a NUL character")


def parse_ready(value: Any, *, base_dir: Path) -> ReadySpec:
    """``ready``: ``"none"``, ``"tcp:HOST:PORT"``, ``"http:URL"``, ``"file:PATH"``, ``"notify"``."""
    if not isinstance(value, str):
        raise ValueProblem(f"expected {_READY_FORMS}, got {describe_value(value)}")
    if value == "none":
        return ReadySpec("none")
    if value == "notify":
        return ReadySpec("notify")
    if value.startswith(("http://", "https://")):
        return ReadySpec("http", url=_check_url(value))
    kind, colon, rest = value.partition(":")
    if colon and kind == "tcp":
        host, port = parse_host_port(rest)
        if port == 0:
            raise ValueProblem(f"{value!r}: port 0 cannot be probed; give the port it listens on")
        return ReadySpec("tcp", host=host, port=port)
    if colon and kind == "http":
        return ReadySpec("http", url=_check_url(rest))
    if colon and kind == "file":
        return ReadySpec("file", path=resolve_path(rest, base_dir=base_dir))
    raise ValueProblem(f"{value!r} is not {_READY_FORMS}")


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    try:
        _ = parts.port  # urllib checks the port only when it is read
    except ValueError:
        raise ValueProblem(f"{url!r} has an invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueProblem(
            f"{url!r} is not an http:// or https:// URL with a host "
            '(e.g. "http:http://127.0.0.1:8000/health")'
        )
    return url
