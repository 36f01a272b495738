"""``corral.toml``: what ``corral run`` runs, parsed and validated.

The schema is declared once, as the frozen dataclasses of
:mod:`corral.supervisor.config_schema`; their fields drive the parsing
(:mod:`~corral.supervisor.config_fields`), the validation and the reference
(:func:`config_reference`). Every error is a :class:`~corral.errors.ConfigError`
naming the file, the line, the section and the key, and saying what to do.

A file has up to four kinds of section::

    [corral]            how corral run itself runs (optional)       RunConfig
    [program.NAME]      a program: its command, instances, stop...  ProgramConfig
    [worker.NAME]       a corral worker (app, concurrency, queues)  ProgramConfig(kind="worker")
    [socket.NAME]       a listening socket opened once, passed on   SocketConfig

See ``examples/corral.toml`` for every key, with comments.
"""

from __future__ import annotations

import difflib
import json
import re
import signal
from collections.abc import Iterator, Mapping
from dataclasses import MISSING
from pathlib import Path
from typing import Any

from corral.errors import ConfigError
from corral.supervisor.config_fields import FieldSpec, convert_table, field_specs
from corral.supervisor.config_order import DependencyCycle, dependency_order
from corral.supervisor.config_schema import (
    WORKER_PROGRAM_DEFAULTS,
    ProgramConfig,
    ReadySpec,
    RunConfig,
    SocketConfig,
    SupervisorConfig,
    WorkerOptions,
)
from corral.supervisor.config_source import ConfigSource, Section
from corral.supervisor.config_worker import worker_program, worker_specs

__all__ = [
    "ProgramConfig",
    "ReadySpec",
    "RunConfig",
    "SocketConfig",
    "SupervisorConfig",
    "WorkerOptions",
    "config_reference",
    "load_config",
    "parse_config",
]

_SECTIONS = {
    "corral": "how corral run itself runs",
    "program": "[program.NAME]: a program to run",
    "worker": "[worker.NAME]: a corral worker",
    "socket": "[socket.NAME]: a listening socket passed to programs",
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def load_config(path: str | Path) -> SupervisorConfig:
    """Read and validate the ``corral.toml`` at ``path``."""
    path = Path(path).absolute()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such config file; create it (see examples/corral.toml) "
            "or name another with -c PATH"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the config file: {error}") from None
    return parse_config(text, path=path)


def parse_config(text: str, *, path: Path) -> SupervisorConfig:
    """Validate ``text``, the content of the file at ``path`` (which relative paths follow)."""
    source = ConfigSource(Path(path).absolute(), text)
    data = source.decode()
    _check_top_level(data, source)
    run = RunConfig(
        **convert_table(
            _table(data, "corral", source),
            field_specs(RunConfig),
            source=source,
            section=("corral",),
        )
    )
    sockets = tuple(_parse_sockets(data, source))
    programs = _parse_programs(data, source)
    _check_sockets(programs, sockets, source)
    return SupervisorConfig(
        path=source.path, run=run, programs=_ordered(programs, source), sockets=sockets
    )


def _check_top_level(data: Mapping[str, Any], source: ConfigSource) -> None:
    for key in data:
        if key not in _SECTIONS:
            close = difflib.get_close_matches(key, list(_SECTIONS), n=1)
            hint = f" (did you mean [{close[0]}]?)" if close else ""
            raise source.error(
                (), key, f"unknown section{hint}; the sections are: {', '.join(_SECTIONS)}"
            )


def _table(data: Mapping[str, Any], key: str, source: ConfigSource) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise source.error(
            (), key, f"expected a table [{key}], got a value; write it as a [{key}] section"
        )
    return value


def _named_tables(
    data: Mapping[str, Any], kind: str, source: ConfigSource
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(NAME, table)`` of every ``[kind.NAME]``, with NAME and table checked."""
    for name, table in _table(data, kind, source).items():
        if not isinstance(table, dict):
            raise source.error(
                (kind,), name, f"expected a table [{kind}.{name}] with its keys, got a value"
            )
        if not _NAME.fullmatch(name):
            raise source.error(
                (kind, name),
                None,
                f"{name!r} is not a valid name; use "
                "letters, digits, _ and - (starting with a letter or digit)",
            )
        yield name, table


def _parse_sockets(data: Mapping[str, Any], source: ConfigSource) -> Iterator[SocketConfig]:
    seen: dict[str, str] = {}
    for name, table in _named_tables(data, "socket", source):
        values = convert_table(
            table, field_specs(SocketConfig), source=source, section=("socket", name)
        )
        sock = SocketConfig(name=name, **values)
        if sock.address in seen:
            raise source.error(
                ("socket", name),
                "address",
                f"{sock.address!r} is already "
                f"the address of [socket.{seen[sock.address]}]; "
                "share that socket or pick another address",
            )
        seen[sock.address] = name
        yield sock


def _parse_programs(data: Mapping[str, Any], source: ConfigSource) -> list[ProgramConfig]:
    programs = [
        ProgramConfig(
            name=name,
            kind="program",
            **convert_table(
                table, field_specs(ProgramConfig), source=source, section=("program", name)
            ),
        )
        for name, table in _named_tables(data, "program", source)
    ]
    taken = {program.name for program in programs}
    for name, table in _named_tables(data, "worker", source):
        if name in taken:
            raise source.error(
                ("worker", name),
                None,
                f"a [program.{name}] has the same "
                f"name (line {source.line_of(('program', name))}); rename one",
            )
        programs.append(worker_program(name, table, source=source))
    if not programs:
        raise source.error(
            (),
            None,
            "no [program.NAME] or [worker.NAME] section: nothing to "
            "run; add one (see examples/corral.toml)",
        )
    return programs


def _section(program: ProgramConfig) -> Section:
    return (program.kind, program.name)


def _check_sockets(
    programs: list[ProgramConfig], sockets: tuple[SocketConfig, ...], source: ConfigSource
) -> None:
    names = [sock.name for sock in sockets]
    for program in programs:
        if program.socket is not None and program.socket not in names:
            valid = ", ".join(names) or "none; add a [socket.NAME] with an address"
            raise source.error(
                _section(program),
                "socket",
                f"no [socket.{program.socket}]; the sockets are: {valid}",
            )


def _ordered(programs: list[ProgramConfig], source: ConfigSource) -> tuple[ProgramConfig, ...]:
    """Dependency order, stable by file order (programs and workers interleaved)."""
    in_file_order = sorted(programs, key=lambda p: source.line_of(_section(p)) or 0)
    names = {program.name for program in programs}
    for program in in_file_order:
        for dependency in program.depends_on:
            if dependency not in names:
                raise source.error(
                    _section(program),
                    "depends_on",
                    (
                        f"no program or worker named {dependency!r}; "
                        f"the names are: {', '.join(p.name for p in in_file_order)}"
                    ),
                )
    try:
        return dependency_order(in_file_order)
    except DependencyCycle as loop:
        first = next(p for p in in_file_order if p.name == loop.cycle[0])
        raise source.error(
            _section(first),
            "depends_on",
            f"dependency cycle {loop}; remove one of these dependencies",
        ) from None


def config_reference() -> str:
    """Every section and key of ``corral.toml`` with its default and meaning, as TOML text."""
    sections: list[tuple[str, Mapping[str, FieldSpec], Mapping[str, Any]]] = [
        ("corral", field_specs(RunConfig), {}),
        ("program.NAME", field_specs(ProgramConfig), {}),
        ("worker.NAME", worker_specs(), WORKER_PROGRAM_DEFAULTS),
        ("socket.NAME", field_specs(SocketConfig), {}),
    ]
    lines = []
    for header, specs, defaults in sections:
        lines.append(f"[{header}]")
        lines.extend(_reference_line(spec, defaults) for spec in specs.values())
        lines.append("")
    return "\n".join(lines)


def _reference_line(spec: FieldSpec, defaults: Mapping[str, Any]) -> str:
    default = defaults.get(spec.name, spec.default)
    if spec.hint == tuple[tuple[str, str], ...]:
        return f"{spec.name} = {{}}  # {spec.doc}"  # a table, not a list
    return f"{spec.name} = {_toml_default(default)}  # {spec.doc}"


def _toml_default(value: Any) -> str:
    """A default as it would be written in the file (``...`` where there is none)."""
    if value is MISSING or value is None:
        return "...  (required)" if value is MISSING else "...  (unset)"
    if isinstance(value, signal.Signals | ReadySpec):
        text = value.kind if isinstance(value, ReadySpec) else value.name.removeprefix("SIG")
        return f'"{text}"'
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | tuple):
        return json.dumps(value if isinstance(value, str) else list(value))
    return repr(value)
