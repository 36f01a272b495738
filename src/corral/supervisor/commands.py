"""What ``corral ctl`` can ask of ``corral run``, and when each answer is due.

Commands that take time (start, stop, restart, reload, shutdown) are answered
when they are done, not when they are accepted: ``reload`` answers once no
process of an older generation remains.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from corral.errors import ConfigError
from corral.process import audit
from corral.supervisor.config import load_config
from corral.supervisor.control import Connection
from corral.supervisor.program import Instance
from corral.supervisor.states import ProgramState

if TYPE_CHECKING:
    from corral.supervisor.supervisor import Supervisor

__all__ = ["Commands"]

log = logging.getLogger("corral.supervisor")

_UNSETTLED = (ProgramState.STARTING, ProgramState.BACKOFF, ProgramState.STOPPING)


@dataclass(slots=True)
class Pending:
    """A command accepted and not yet done."""

    connection: Connection | None
    done: Callable[[], bool]
    result: Callable[[], dict[str, Any]]
    then: Callable[[], Pending | None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Commands:
    """Dispatches control requests and answers them when they are done."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self.pending: list[Pending] = []

    def handle(self, connection: Connection) -> None:
        """Act on a request read from ``connection``."""
        request = connection.request or {}
        if "error" in request:
            connection.answer({"ok": False, "error": request["error"]})
            return
        command = str(request.get("command", ""))
        args = request.get("args") or {}
        handler = getattr(self, f"_{command}", None) if command in COMMANDS else None
        if handler is None:
            connection.answer(
                {
                    "ok": False,
                    "error": f"unknown command {command!r}; use one of {', '.join(COMMANDS)}",
                }
            )
            return
        try:
            handler(connection, args)
        except ConfigError as error:
            connection.answer({"ok": False, "error": str(error)})

    def answer_finished(self) -> None:
        """Answer every pending command that is done (or start its next step)."""
        for pending in list(self.pending):
            if not pending.done():
                continue
            self.pending.remove(pending)
            following = pending.then() if pending.then else None
            if following is not None:
                self.pending.append(following)
            elif pending.connection is not None:
                pending.connection.answer({"ok": True, **pending.result()})

    # -- selection -------------------------------------------------------------
    def _select(self, name: str) -> list[Instance]:
        everything = self.supervisor.all_instances()
        if name in ("", "all"):
            return everything
        program, _, index = name.partition(":")
        found = [
            i
            for i in everything
            if i.program.name == program and (not index or str(i.index) == index)
        ]
        if not found:
            names = sorted({i.program.name for i in everything})
            raise ConfigError(f"no program {name!r}; programs: {', '.join(names) or 'none'}")
        return found

    def _states(self, instances: list[Instance]) -> dict[str, Any]:
        return {"instances": {i.name: i.state.value for i in instances}}

    # -- commands ---------------------------------------------------------------
    def _status(self, connection: Connection, args: dict[str, Any]) -> None:
        supervisor = self.supervisor
        connection.answer(
            {
                "ok": True,
                "pid": os.getpid(),
                "owner": supervisor.owner_id,
                "config": str(supervisor.config.path),
                "containment": supervisor.containment.describe(),
                "instances": [
                    dataclasses.asdict(i.status()) for i in self._select(args.get("name", ""))
                ],
                "detached": _detached(supervisor),
            }
        )

    def _start(self, connection: Connection, args: dict[str, Any]) -> None:
        instances = self._select(args.get("name", ""))
        for instance in instances:
            instance.start()
        self.pending.append(self._until_settled(connection, instances))

    def _stop(self, connection: Connection | None, args: dict[str, Any]) -> None:
        instances = self._select(args.get("name", ""))
        for instance in instances:
            instance.stop()
        self.pending.append(
            Pending(
                connection,
                lambda: all(i.stopped for i in instances),
                lambda: self._states(instances),
            )
        )

    def _restart(self, connection: Connection, args: dict[str, Any]) -> None:
        instances = self._select(args.get("name", ""))
        for instance in instances:
            instance.stop()

        def start_again() -> Pending:
            for instance in instances:
                instance.start()
            return self._until_settled(connection, instances)

        self.pending.append(
            Pending(None, lambda: all(i.stopped for i in instances), dict, then=start_again)
        )

    def _until_settled(self, connection: Connection | None, instances: list[Instance]) -> Pending:
        return Pending(
            connection,
            lambda: all(i.state not in _UNSETTLED and i.settled for i in instances),
            lambda: self._states(instances),
        )

    def _signal(self, connection: Connection, args: dict[str, Any]) -> None:
        name = str(args.get("signal", "")).upper().removeprefix("SIG")
        try:
            signum = signal.Signals[f"SIG{name}"]
        except KeyError:
            raise ConfigError(f"unknown signal {args.get('signal')!r} (e.g. HUP, USR1)") from None
        sent = []
        for instance in self._select(args.get("name", "")):
            if instance.current is not None and instance.current.ref.send_signal(signum):
                sent.append(instance.name)
        connection.answer({"ok": True, "signalled": sent})

    def _shutdown(self, connection: Connection, args: dict[str, Any]) -> None:
        connection.answer({"ok": True, "shutting_down": True})
        self.supervisor.shutdown("corral ctl shutdown")

    def _reload(self, connection: Connection, args: dict[str, Any]) -> None:
        self.reload(everything=bool(args.get("all")), connection=connection)

    def reload(self, *, everything: bool, connection: Connection | None) -> None:
        """Re-read the config; roll what changed (or everything) to a new generation."""
        supervisor = self.supervisor
        try:
            new = load_config(supervisor.config.path)
        except ConfigError as error:
            log.error("reload refused, keeping the running config: %s", error)
            if connection is not None:
                connection.answer({"ok": False, "error": str(error)})
            return
        report = _apply(supervisor, new, everything=everything)
        touched = [
            i for name in report["reloaded"] + report["added"] for i in supervisor.instances[name]
        ]
        self.pending.append(
            Pending(
                connection,
                lambda: (
                    all(i.settled and i.state not in _UNSETTLED for i in touched)
                    and not supervisor.retired
                ),
                lambda: {**report, **self._states(touched)},
            )
        )


def _detached(supervisor: Supervisor) -> list[dict[str, Any]]:
    """Processes handed over with detach(): alive, recorded, still reaped by us."""
    rows = []
    for pid in supervisor.containment.detached_unit().pids():
        info = audit.info_of(pid)
        if info is not None:
            rows.append(
                {"pid": pid, "cmdline": " ".join(info.cmdline), "rss_bytes": info.rss_bytes}
            )
    return rows


def _apply(supervisor: Supervisor, new: Any, *, everything: bool) -> dict[str, list[str]]:
    old_programs = {p.name: p for p in supervisor.config.programs}
    supervisor.config = new
    report: dict[str, list[str]] = {"reloaded": [], "added": [], "removed": [], "unchanged": []}
    for program in new.programs:
        old = old_programs.pop(program.name, None)
        if old is None:
            supervisor.add_program(program)
            report["added"].append(program.name)
        elif everything or old != program:
            _replace(supervisor, program)
            report["reloaded"].append(program.name)
        else:
            report["unchanged"].append(program.name)
    for name in old_programs:
        supervisor.retire(supervisor.instances.pop(name))
        report["removed"].append(name)
    return report


def _replace(supervisor: Supervisor, program: Any) -> None:
    instances = supervisor.instances[program.name]
    supervisor.retire(instances[program.numprocs :])
    kept = instances[: program.numprocs]
    for instance in kept:
        instance.replace(program)
    extra = [
        Instance(program, i, supervisor.start_generation)
        for i in range(len(kept), program.numprocs)
    ]
    supervisor.instances[program.name] = kept + extra


COMMANDS = ("status", "start", "stop", "restart", "reload", "signal", "shutdown")
