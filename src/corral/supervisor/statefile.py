"""``.corral/run.state``: who owns the units, so a dead ``corral run`` is cleaned up.

``corral run`` writes its identity (pid, start time, owner id, containment)
when it starts. If it is killed with SIGKILL, its programs' main processes get a
parent-death signal, but what they started does not; the next ``corral run``
reads the file, sees the owner is dead, and stops every process of that owner
before it starts anything: old and new never run side by side (seeds/002).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from corral.errors import ConfigError
from corral.process import ProcessError, ProcessRef, audit, reclaim_abandoned
from corral.process.procfs import start_ticks_of

__all__ = ["RunState", "clean_up_after", "read_state", "write_state"]

log = logging.getLogger("corral.supervisor")


@dataclass(frozen=True, slots=True)
class RunState:
    """The identity of a ``corral run``."""

    pid: int
    start_ticks: int
    owner_id: str
    containment: str
    config: str

    def alive(self) -> bool:
        """True if that ``corral run`` process still runs (a zombie does not)."""
        info = audit.info_of(self.pid)
        return info is not None and not info.zombie and info.start_ticks == self.start_ticks


def write_state(path: Path, state: RunState) -> None:
    """Write atomically (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(state)))
    tmp.replace(path)


def read_state(path: Path) -> RunState | None:
    """The recorded state, or None if there is none; ConfigError if it is unreadable."""
    try:
        data = json.loads(path.read_text())
        return RunState(**data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as error:
        raise ConfigError(
            f"state file {path} is not a corral run state ({error}); remove it if no "
            f"corral run uses it"
        ) from None


def clean_up_after(previous: RunState, *, timeout_s: float = 10.0) -> list[str]:
    """Stop every process a dead ``corral run`` left; return what was killed (for logs)."""
    killed: list[str] = []
    if previous.containment == "cgroup":
        for owner in reclaim_abandoned():
            killed.append(owner.describe())
    leftovers = [info for info in audit.scan(owner=previous.owner_id) if not info.zombie]
    for info in leftovers:
        if _kill(info.pid):
            killed.append(info.describe())
    _wait_gone([i.pid for i in leftovers], timeout_s)
    return killed


def _kill(pid: int) -> bool:
    try:
        ref = ProcessRef.of(pid)
    except ProcessError:
        return False
    try:
        return ref.send_signal(signal.SIGKILL)
    finally:
        ref.close()


def _wait_gone(pids: list[int], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alive = [p for p in pids if (info := audit.info_of(p)) is not None and not info.zombie]
        if not alive:
            return
        time.sleep(0.05)
    log.error("processes of the previous corral run survived SIGKILL: %s", alive)


def own_state(owner_id: str, containment: str, config: Path) -> RunState:
    """This process's state record."""
    ticks = start_ticks_of(os.getpid()) or 0
    return RunState(os.getpid(), ticks, owner_id, containment, str(config))
