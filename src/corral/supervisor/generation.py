"""One start of a program instance: its unit, its main process, its logs, its readiness.

Every start is a new generation (P4), stamped into the environment of every
process it runs (CORRAL_GENERATION) and into its unit's name. Stopping a
generation sends ``stop_signal`` to its main process and, once that is gone,
to whatever the main left behind (a ``bash -c`` wrapper that does not forward
signals: seeds/002); after ``stop_grace_s`` everything left is SIGKILLed. It is
stopped only when its unit is empty.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from corral.process import Containment, ExitStatus, ProcessError, Unit, audit
from corral.supervisor.config import ProgramConfig
from corral.supervisor.launch import launcher_argv
from corral.supervisor.logfile import LogPump, RotatingLog
from corral.supervisor.ready import make_probe

__all__ = ["Generation", "ProcessRow"]

log = logging.getLogger("corral.supervisor")


@dataclass(frozen=True, slots=True)
class ProcessRow:
    """One live process of a generation, for status."""

    pid: int
    ppid: int
    generation: int
    main: bool
    rss_bytes: int
    cmdline: str
    started_s: float


class Generation:
    """One start of instance ``index`` of ``program``."""

    def __init__(
        self,
        program: ProgramConfig,
        *,
        index: int,
        number: int,
        containment: Containment,
        listener: socket.socket | None,
        logs: tuple[RotatingLog, RotatingLog],
        run_dir: Path,
    ) -> None:
        self.program = program
        self.index = index
        self.number = number
        self._containment = containment
        self.unit: Unit = containment.create_unit(
            f"{program.name}-{index}-g{number}", generation=number
        )
        self._notify_path = run_dir / f"{self.unit.unit_id}.notify"
        self.probe = make_probe(program.ready, notify_path=self._notify_path)
        self.pumps: list[LogPump] = []
        self.started_at = time.monotonic()
        self.stop_deadline: float | None = None
        self._rest_signalled = False
        self._spawn(listener, logs)

    def __repr__(self) -> str:
        return f"<generation {self.unit.unit_id} pid={self.pid}>"

    def _spawn(self, listener: socket.socket | None, logs: tuple[RotatingLog, RotatingLog]) -> None:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        listen_fd = listener.fileno() if listener is not None else None
        argv = launcher_argv(
            list(self.program.command),
            parent_pid=os.getpid(),
            pdeathsig=signal.SIGTERM,
            listen_fd=listen_fd,
            listen_name=self.program.socket,
            notify_path=self._notify_path if self.program.ready.kind == "notify" else None,
        )
        env = dict(os.environ)
        env.update(self.program.environment)
        try:
            self.ref = self.unit.spawn(
                argv,
                env=env,
                cwd=self.program.directory,
                pass_fds=(listen_fd,) if listen_fd is not None else (),
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
            )
        finally:
            os.close(out_w)
            os.close(err_w)
        self.pid = self.ref.pid
        self.pumps = [LogPump(out_r, logs[0]), LogPump(err_r, logs[1])]

    # -- what the loop asks ----------------------------------------------------
    @property
    def exit_status(self) -> ExitStatus | None:
        """How the main process ended, once the reaper has collected it."""
        return self._containment.reaper.status_of(self.ref)

    def up_s(self) -> float:
        """Seconds since the start."""
        return time.monotonic() - self.started_at

    def is_ready(self) -> bool:
        """Up for ``start_s`` and its ready probe passes."""
        return self.up_s() >= self.program.start_s and self.probe.check()

    def is_empty(self) -> bool:
        """True when no process of this generation is left."""
        return self.unit.is_empty()

    # -- stopping --------------------------------------------------------------
    def begin_stop(self) -> None:
        """Send the stop signal to the main process; the grace period starts now."""
        if self.stop_deadline is not None:
            return
        self._hand_over_kept()
        self.stop_deadline = time.monotonic() + self.program.stop_grace_s
        if self.exit_status is None:
            self.ref.send_signal(self.program.stop_signal)
        else:
            self._signal_rest()

    def _hand_over_kept(self) -> None:
        """Processes matching a ``keep`` pattern leave the unit for the detached one (seed 001)."""
        if not self.program.keep:
            return
        for pid in self.unit.pids():
            info = audit.info_of(pid)
            command = " ".join(info.cmdline) if info else ""
            if pid != self.pid and any(fnmatch.fnmatch(command, p) for p in self.program.keep):
                try:
                    self._containment.hand_over(pid)
                except ProcessError as error:
                    log.warning(
                        "%s: could not keep %d (%s): %s", self.unit.unit_id, pid, command, error
                    )
                    continue
                log.info("%s: keeping %d (%s): it matches keep", self.unit.unit_id, pid, command)

    def advance_stop(self) -> bool:
        """Move the stop on; True once the unit is empty."""
        if self.stop_deadline is None:
            self.begin_stop()
        if self.unit.is_empty():
            return True
        if self.exit_status is not None:
            self._signal_rest()
        assert self.stop_deadline is not None
        if time.monotonic() >= self.stop_deadline:
            self._kill_rest()
        return self.unit.is_empty()

    def kill_now(self) -> None:
        """SIGKILL the whole unit (a second TERM, or a stop past its grace)."""
        self.stop_deadline = time.monotonic()
        self._kill_rest()

    def _signal_rest(self) -> None:
        # The main process is gone but left processes behind (bash -c without exec):
        # they get the stop signal too, and the rest of the grace period.
        if not self._rest_signalled:
            self._rest_signalled = True
            self.unit.signal_all(self.program.stop_signal)

    def _kill_rest(self) -> None:
        pids = self.unit.pids()
        if pids:
            log.warning(
                "%s: still running after stop_grace_s=%g, killing: %s",
                self.unit.unit_id,
                self.program.stop_grace_s,
                "; ".join(_describe(pid) for pid in pids),
            )
        self.unit.kill_all()

    def close(self) -> None:
        """Release the unit and the probe (the supervisor closes the log pipes at EOF)."""
        self.probe.close()
        try:
            self.unit.close(kill_timeout_s=self.program.kill_timeout_s)
        except ProcessError as error:
            log.error("%s", error)

    # -- status ----------------------------------------------------------------
    def processes(self) -> list[ProcessRow]:
        """Every live process of this generation."""
        rows = []
        for pid in self.unit.pids():
            info = audit.info_of(pid)
            if info is None:
                continue
            rows.append(
                ProcessRow(
                    pid=pid,
                    ppid=info.ppid,
                    # Membership of this generation's unit, not the CORRAL_GENERATION
                    # marker: a corral worker re-stamps the marker of its pool processes
                    # with its own pool generation, which would flag them as stale.
                    generation=self.number,
                    main=pid == self.pid,
                    rss_bytes=info.rss_bytes,
                    cmdline=" ".join(info.cmdline),
                    started_s=self.up_s(),
                )
            )
        return rows


def _describe(pid: int) -> str:
    info = audit.info_of(pid)
    return f"{pid} ({' '.join(info.cmdline) if info else '?'})"
