"""The ``corral.toml`` schema: one frozen dataclass per section.

These dataclasses are the single declaration of the file format. Their fields
are the valid keys, their defaults are the defaults, their types pick the
converter (see :mod:`corral.supervisor.config_fields`), and each field's
``metadata`` carries its documentation and any bound or special syntax:

- ``doc``: one line for the reference and the example file;
- ``min``: the smallest accepted number;
- ``parse``: a value with a syntax of its own (``signal``, ``command``, ...);
- ``path``: a path, made absolute against the config file's directory;
- ``internal``: filled in by the parser, not a key of the file.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from corral.errors import ConfigError

__all__ = [
    "ProgramConfig",
    "ReadySpec",
    "RunConfig",
    "SocketConfig",
    "SupervisorConfig",
    "WorkerOptions",
]

ReadyKind = Literal["none", "tcp", "http", "file", "notify"]
Autorestart = Literal["always", "on-failure", "never"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def _meta(doc: str, **extra: Any) -> dict[str, Any]:
    return {"doc": doc, **extra}


@dataclass(frozen=True, slots=True)
class ReadySpec:
    """When an instance counts as ready, parsed from ``ready``.

    ``"none"`` (ready once it stayed up ``start_s``), ``"tcp:HOST:PORT"`` (the
    port accepts a connection), ``"http:URL"`` (the URL answers), ``"file:PATH"``
    (the file exists) or ``"notify"`` (the program writes ``READY=1`` to the
    fd/socket ``corral run`` hands it, as with systemd's ``sd_notify``).
    ``http:`` may be omitted before a URL: ``"http://127.0.0.1:8000/health"``.
    """

    kind: ReadyKind
    host: str = ""
    port: int = 0
    url: str = ""
    path: str = ""


@dataclass(frozen=True, slots=True)
class ProgramConfig:
    """One ``[program.NAME]`` (or ``[worker.NAME]``, with ``kind="worker"``)."""

    name: str = field(metadata=_meta("the NAME of [program.NAME]", internal=True))
    command: tuple[str, ...] = field(
        metadata=_meta('argv list, or a string run by "/bin/sh -c"', parse="command")
    )
    numprocs: int = field(default=1, metadata=_meta("instances to run", min=1))
    directory: str | None = field(
        default=None, metadata=_meta("working directory (default: corral run's)", path=True)
    )
    environment: tuple[tuple[str, str], ...] = field(
        default=(), metadata=_meta("extra environment variables, a table NAME = value")
    )
    autostart: bool = field(default=True, metadata=_meta("start with corral run"))
    autorestart: Autorestart = field(
        default="on-failure", metadata=_meta("restart an instance when it exits")
    )
    start_s: float = field(
        default=1.0, metadata=_meta("an instance must stay up this long to count as started", min=0)
    )
    start_retries: int = field(
        default=3,
        metadata=_meta("failed starts in a row (with exponential backoff) before giving up", min=0),
    )
    stop_signal: int = field(
        default=signal.SIGTERM,
        metadata=_meta("signal that asks the program to stop", parse="signal"),
    )
    stop_grace_s: float = field(
        default=10.0,
        metadata=_meta("wait this long after stop_signal before killing the whole tree", min=0),
    )
    kill_timeout_s: float = field(
        default=5.0, metadata=_meta("wait this long for the tree to vanish after SIGKILL", min=0)
    )
    ready: ReadySpec = field(
        default=ReadySpec("none"),
        metadata=_meta('"none", "tcp:HOST:PORT", "http:URL", "file:PATH" or "notify"'),
    )
    depends_on: tuple[str, ...] = field(
        default=(), metadata=_meta("programs that must be ready before this one starts")
    )
    stdout: str | None = field(
        default=None, metadata=_meta("log file (default: <log_dir>/<name>.out.log)", path=True)
    )
    stderr: str | None = field(
        default=None,
        metadata=_meta(
            'log file (default: <log_dir>/<name>.err.log; "stdout": same file)', parse="stderr"
        ),
    )
    log_max_bytes: int = field(
        default=10 * 1024 * 1024, metadata=_meta("rotate a log file at this size (0: never)", min=0)
    )
    log_backups: int = field(default=5, metadata=_meta("rotated log files kept", min=0))
    socket: str | None = field(
        default=None, metadata=_meta("NAME of a [socket.NAME] passed as LISTEN_FDS")
    )
    keep: tuple[str, ...] = field(
        default=(), metadata=_meta("fnmatch patterns of command lines that survive a stop")
    )
    kind: Literal["program", "worker"] = field(
        default="program", metadata=_meta("program or worker", internal=True)
    )


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """The keys of ``[worker.NAME]`` beyond a program's: a ``corral worker`` command line."""

    app: str = field(metadata=_meta('the Corral app, "module:attribute"', parse="app"))
    concurrency: int = field(
        default=os.cpu_count() or 1, metadata=_meta("pool processes (default: CPU count)", min=1)
    )
    queues: tuple[str, ...] = field(
        default=("default",), metadata=_meta("queues to consume", parse="queues")
    )
    prefetch: int = field(
        default=4, metadata=_meta("messages reserved ahead per pool process", min=0)
    )
    max_tasks_per_child: int = field(
        default=0, metadata=_meta("replace a pool process after this many tasks (0: never)", min=0)
    )
    max_memory_per_child_mb: int = field(
        default=0, metadata=_meta("replace a pool process above this RSS (0: never)", min=0)
    )
    log_level: LogLevel = field(default="INFO", metadata=_meta("the worker's log level"))
    log_format: Literal["text", "json"] = field(
        default="text", metadata=_meta("the worker's log format")
    )


# A worker hands unfinished tasks back during its own grace period, so it needs a
# longer one than a typical program (its --grace-s is this minus one second).
WORKER_PROGRAM_DEFAULTS: dict[str, Any] = {"stop_grace_s": 30.0}


@dataclass(frozen=True, slots=True)
class SocketConfig:
    """One ``[socket.NAME]``: a listening socket ``corral run`` opens once and passes on."""

    name: str = field(metadata=_meta("the NAME of [socket.NAME]", internal=True))
    address: str = field(
        metadata=_meta('"HOST:PORT", "[::1]:PORT" or "unix:PATH"', parse="address")
    )
    backlog: int = field(default=128, metadata=_meta("listen() backlog", min=1))

    def host_port(self) -> tuple[str, int]:
        """``(host, port)`` of a TCP address (IPv6 without brackets)."""
        if self.unix_path() is not None:
            raise ConfigError(f"[socket.{self.name}] {self.address!r} is a unix socket")
        host, _, port = self.address.rpartition(":")
        return host.strip("[]"), int(port)

    def unix_path(self) -> str | None:
        """The path of a ``unix:`` address, else None."""
        return self.address.removeprefix("unix:") if self.address.startswith("unix:") else None


@dataclass(frozen=True, slots=True)
class RunConfig:
    """The optional ``[corral]`` section: how ``corral run`` itself runs."""

    control_socket: str = field(
        default=".corral/control.sock", metadata=_meta("unix socket corral ctl talks to", path=True)
    )
    state_file: str = field(
        default=".corral/run.state", metadata=_meta("where corral run records its units", path=True)
    )
    log_dir: str = field(
        default=".corral/logs", metadata=_meta("default directory of program logs", path=True)
    )
    containment: Literal["auto", "cgroup", "subreaper"] = field(
        default="auto",
        metadata=_meta("cgroup v2 per program, or subreaper; auto: cgroup when writable"),
    )
    shutdown_timeout_s: float = field(
        default=60.0, metadata=_meta("stopping everything may take at most this long", min=0)
    )


@dataclass(frozen=True, slots=True)
class SupervisorConfig:
    """A whole ``corral.toml``, validated, every path absolute.

    ``programs`` (workers included, ``kind="worker"``) are in dependency order:
    every program comes after those it depends on, otherwise in file order.
    """

    path: Path
    run: RunConfig
    programs: tuple[ProgramConfig, ...]
    sockets: tuple[SocketConfig, ...]

    def program(self, name: str) -> ProgramConfig:
        """The program or worker called ``name``; ConfigError listing the names if unknown."""
        for program in self.programs:
            if program.name == name:
                return program
        names = ", ".join(p.name for p in self.programs) or "none"
        raise ConfigError(
            f"{self.path}: no program or worker named {name!r}; the names are: {names}"
        )

    def socket(self, name: str) -> SocketConfig:
        """The ``[socket.NAME]`` called ``name``; ConfigError listing the names if unknown."""
        for sock in self.sockets:
            if sock.name == name:
                return sock
        names = ", ".join(s.name for s in self.sockets) or "none"
        raise ConfigError(f"{self.path}: no [socket.{name}]; the sockets are: {names}")

    def log_files(self, name: str) -> tuple[str, str]:
        """Absolute (stdout, stderr) log paths of program ``name``, defaults filled in.

        Both are the same path when ``stderr = "stdout"``.
        """
        program = self.program(name)
        stdout = program.stdout or os.path.join(self.run.log_dir, f"{name}.out.log")
        if program.stderr == "stdout":
            return stdout, stdout
        return stdout, program.stderr or os.path.join(self.run.log_dir, f"{name}.err.log")
