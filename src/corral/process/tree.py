"""kill_tree: stop a unit's whole process tree within grace + kill timeout (P2, P8).

Signalling the main pid is not stopping: ``sh -c 'sleep 300'`` dies on SIGTERM and its
``sleep`` keeps running, re-parented (seed 002). ``kill_tree`` signals every process of
the unit, waits for the unit to be *empty*, and SIGKILLs what is left; it returns
only once nothing is alive in the unit, or raises naming the survivors (a process in
uninterruptible sleep can outlive SIGKILL for a while).
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass

from corral.process import audit
from corral.process.errors import ProcessError
from corral.process.unit import Unit

__all__ = ["KillReport", "KilledProcess", "kill_tree"]

_POLL_S = 0.02


@dataclass(frozen=True, slots=True)
class KilledProcess:
    """A process kill_tree acted on, for logs."""

    pid: int
    cmdline: tuple[str, ...]

    def describe(self) -> str:
        """``pid 12 (sleep 300)``."""
        return f"pid {self.pid} ({' '.join(self.cmdline) or '?'})"


@dataclass(frozen=True, slots=True)
class KillReport:
    """What kill_tree did: who got the stop signal, who needed SIGKILL, how long it took."""

    unit_id: str
    stop_signal: int
    signalled: tuple[KilledProcess, ...]
    sigkilled: tuple[KilledProcess, ...]
    elapsed_s: float

    def describe(self) -> str:
        """One log line."""
        name = signal.Signals(self.stop_signal).name
        line = f"unit {self.unit_id!r}: {name} to {len(self.signalled)} process(es)"
        if self.sigkilled:
            killed = ", ".join(p.describe() for p in self.sigkilled)
            line += f"; SIGKILL needed for {killed}"
        return f"{line}; empty after {self.elapsed_s:.2f}s"


def _snapshot(pids: list[int]) -> tuple[KilledProcess, ...]:
    found = []
    for pid in pids:
        info = audit.info_of(pid)
        found.append(KilledProcess(pid, info.cmdline if info else ()))
    return tuple(found)


def kill_tree(
    unit: Unit,
    *,
    grace_s: float,
    kill_timeout_s: float = 5.0,
    stop_signal: int = signal.SIGTERM,
) -> KillReport:
    """Stop every process of ``unit``: ``stop_signal``, ``grace_s`` to exit, then SIGKILL.

    Returns when the unit is empty; raises ProcessError after ``grace_s + kill_timeout_s``
    naming the processes that survived.
    """
    started = time.monotonic()
    signalled = _snapshot(unit.signal_all(stop_signal))
    # A stopped process (SIGSTOP, ^Z) would sit on SIGTERM forever; wake it to act on it.
    unit.signal_all(signal.SIGCONT)
    if unit.wait_empty(timeout_s=grace_s):
        return KillReport(unit.unit_id, stop_signal, signalled, (), time.monotonic() - started)
    sigkilled = _snapshot(unit.pids())
    deadline = time.monotonic() + kill_timeout_s
    # Repeat: a member may fork between our listing and the kill (the fallback strategy
    # cannot kill atomically; cgroup.kill can, and repeating it is harmless).
    while True:
        unit.kill_all()
        if unit.wait_empty(timeout_s=min(0.1, max(0.0, deadline - time.monotonic()))):
            break
        if time.monotonic() >= deadline:
            survivors = ", ".join(p.describe() for p in _snapshot(unit.pids()))
            raise ProcessError(
                f"kill_tree(): unit {unit.unit_id!r} not empty kill_timeout_s={kill_timeout_s} "
                f"after SIGKILL: {survivors} (uninterruptible sleep? check their state)"
            )
    return KillReport(unit.unit_id, stop_signal, signalled, sigkilled, time.monotonic() - started)
