"""Processes a task left running after it returned: kill, warn about, or keep them.

Everything a task starts, at any depth, stays in its pool process's unit
(corral.process containment), so after a task the unit's members other than
the pool process itself are the task's leftovers. Policy per task, option
``leftovers``: ``"kill"`` (default; logged with the commands), ``"warn"`` or
``"keep"`` (they stay in the unit and die with the pool process; to keep a
process beyond that, the task calls ``corral.detach()``).
"""

from __future__ import annotations

import logging
import signal

from corral.process import ProcessError, ProcessRef, audit
from corral.worker.pool import PoolHandle

__all__ = ["check_leftovers"]

log = logging.getLogger("corral.worker")

_STRICTNESS = {"keep": 0, "warn": 1, "kill": 2}


def check_leftovers(pool: PoolHandle, tasks: list[tuple[str, str]]) -> None:
    """Apply the strictest policy of ``tasks`` (name, policy) to the unit's new leftovers."""
    pids = [p for p in pool.unit.pids() if p != pool.pid and p not in pool.known_leftovers]
    if not pids:
        return
    policy = max((policy for _, policy in tasks), key=_STRICTNESS.__getitem__, default="kill")
    names = ", ".join(sorted({name for name, _ in tasks}))
    commands = "; ".join(_describe(pid) for pid in pids)
    if policy == "kill":
        log.warning("task %s left processes running: %s; killing them", names, commands)
        for pid in pids:
            _kill(pid)
        return
    if policy == "warn":
        log.warning("task %s left processes running (leftovers='warn'): %s", names, commands)
    pool.known_leftovers.update(pids)


def _describe(pid: int) -> str:
    info = audit.info_of(pid)
    command = " ".join(info.cmdline) if info and info.cmdline else "?"
    return f"pid {pid} ({command})"


def _kill(pid: int) -> None:
    try:
        ref = ProcessRef.of(pid)
    except ProcessError:
        return  # already gone
    try:
        ref.send_signal(signal.SIGKILL)
    finally:
        ref.close()
