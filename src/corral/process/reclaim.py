"""Reclaiming the cgroups of dead owners: what a SIGKILLed worker main left behind.

A worker main killed with SIGKILL (or by the OOM killer) cannot close its units; with
the cgroup strategy they stay, populated, under ``<base>/corral-<owner id>``. The next
owner started on the machine calls ``reclaim_abandoned()``: every ``corral-*``
directory whose recorded owner (pid + start time, the ``user.corral.owner`` xattr that
``CgroupContainment`` writes) is no longer alive has its units killed (``cgroup.kill``,
or freeze + SIGKILL) and its directories removed.

Safety rules, because this kills processes that are not ours:

- only ``corral-*`` directories directly under a cgroup v2 ``base`` (never v1
  hierarchies, never other cgroups);
- an owner is dead only when no process has its recorded pid *with its recorded start
  time* (a reused pid is a stranger, not the owner); a zombie owner is dead;
- a directory without an owner record is left alone and reported, never guessed at;
- the ``detached`` unit is spared: its processes were handed over on purpose
  (``detach()``, seed 001) and outlive their owner; the owner directory stays until
  they end, and a later reclaim removes it.

Pids are those of this pid namespace: run the reclaimer where the owners ran.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from corral.process import audit, markers, procfs
from corral.process.cgroup import (
    _populated,
    _procs,
    _rmdir_tree,
    find_writable_cgroup,
    kill_cgroup,
    pid_namespace,
    read_owner_record,
)
from corral.process.errors import ProcessError
from corral.process.tree import KilledProcess

__all__ = [
    "AbandonedOwner",
    "ReclaimedOwner",
    "find_abandoned",
    "owner_alive",
    "reclaim_abandoned",
]

OWNER_PREFIX = "corral-"
_POLL_S = 0.02


@dataclass(frozen=True, slots=True)
class AbandonedOwner:
    """An owner cgroup whose owner is dead (``owner_pid`` set) or unknown (None)."""

    owner_id: str
    directory: Path
    owner_pid: int | None
    owner_start_ticks: int | None

    @property
    def recorded(self) -> bool:
        """True when the owner's identity was recorded, so its death is certain."""
        return self.owner_pid is not None


@dataclass(frozen=True, slots=True)
class ReclaimedOwner:
    """What ``reclaim_abandoned`` did with one abandoned owner cgroup."""

    owner_id: str
    directory: Path
    owner_pid: int | None
    killed: tuple[KilledProcess, ...]
    kept: tuple[KilledProcess, ...]  # detached processes, left running on purpose
    removed: bool
    note: str = ""

    def describe(self) -> str:
        """One log line."""
        who = f"owner {self.owner_id!r}" + (
            f" (pid {self.owner_pid}, dead)" if self.owner_pid is not None else ""
        )
        parts = [f"{who} at {self.directory}"]
        if self.killed:
            parts.append("killed " + ", ".join(p.describe() for p in self.killed))
        if self.kept:
            parts.append("kept detached " + ", ".join(p.describe() for p in self.kept))
        parts.append("removed" if self.removed else "not removed")
        if self.note:
            parts.append(self.note)
        return "; ".join(parts)


def _base_or_none(base: Path | None) -> Path | None:
    if base is None:
        return find_writable_cgroup()
    # Every cgroup v2 directory has cgroup.controllers; no v1 hierarchy does.
    if not (base / "cgroup.controllers").exists():
        raise ProcessError(
            f"reclaim: base={str(base)!r} is not a cgroup v2 directory (no cgroup.controllers); "
            "pass the directory CgroupContainment uses (find_writable_cgroup()) or None"
        )
    return base


def _owner_alive(pid: int, start_ticks: int, namespace: str) -> bool:
    # An owner in another pid namespace cannot be judged from here (its pid means
    # another process here): count it as alive, never kill what cannot be judged.
    # When a namespace's init dies the kernel kills everything in it anyway.
    if namespace != pid_namespace():
        return True
    st = procfs.stat_of(pid)
    return st is not None and st.start_ticks == start_ticks and not st.zombie


def owner_alive(owner_dir: Path) -> bool | None:
    """Whether the owner recorded on a ``corral-<owner>`` cgroup lives; None if unrecorded."""
    record = read_owner_record(owner_dir)
    return None if record is None else _owner_alive(*record)


def _abandoned(directory: Path) -> AbandonedOwner | None:
    owner_id = directory.name[len(OWNER_PREFIX) :]
    record = read_owner_record(directory)
    if record is None:
        return AbandonedOwner(owner_id, directory, None, None)
    if _owner_alive(*record):
        return None
    return AbandonedOwner(owner_id, directory, record[0], record[1])


def find_abandoned(*, base: Path | None = None) -> list[AbandonedOwner]:
    """Owner cgroups under ``base`` whose owner is dead or unrecorded; changes nothing.

    ``base`` defaults to the writable cgroup v2 that ``CgroupContainment`` would use;
    without one there is nothing to find.
    """
    procfs.require_linux("find_abandoned")
    root = _base_or_none(base)
    if root is None:
        return []
    found = []
    for directory in sorted(root.glob(f"{OWNER_PREFIX}*")):
        if not directory.is_dir():
            continue
        abandoned = _abandoned(directory)
        if abandoned is not None:
            found.append(abandoned)
    return found


def _snapshot(pids: list[int]) -> tuple[KilledProcess, ...]:
    infos = (audit.info_of(pid) for pid in pids)
    return tuple(KilledProcess(i.pid, i.cmdline) for i in infos if i is not None)


def _units(owner_dir: Path) -> list[Path]:
    return sorted(p for p in owner_dir.iterdir() if p.is_dir() and p.name != markers.DETACHED_UNIT)


def _wait_empty(directory: Path, *, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while _populated(directory):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_S)
    return True


def _kill_unit(unit: Path, *, kill_timeout_s: float) -> None:
    deadline = time.monotonic() + kill_timeout_s
    # Repeat the kill: with the freeze fallback a fork in flight can add a member.
    while _populated(unit):
        kill_cgroup(unit)
        remaining_s = max(0.0, deadline - time.monotonic())
        if _wait_empty(unit, timeout_s=min(0.2, remaining_s)) or remaining_s == 0.0:
            break
    if _populated(unit):
        raise ProcessError(
            f"reclaim: cgroup {unit} still holds {_procs(unit)} after "
            f"kill_timeout_s={kill_timeout_s} (uninterruptible sleep?); inspect them"
        )
    _rmdir_tree(unit)


def _reclaim_one(abandoned: AbandonedOwner, *, kill_timeout_s: float) -> ReclaimedOwner:
    owner_dir = abandoned.directory
    killed: tuple[KilledProcess, ...] = ()
    kept: tuple[KilledProcess, ...] = ()
    note = ""
    try:
        units = _units(owner_dir)
        killed = _snapshot([pid for unit in units for pid in _procs(unit)])
        for unit in units:
            _kill_unit(unit, kill_timeout_s=kill_timeout_s)
        detached = owner_dir / markers.DETACHED_UNIT
        kept = _snapshot(_procs(detached)) if detached.exists() else ()
        if not kept:
            _rmdir_tree(owner_dir)
    except (OSError, ProcessError) as error:
        note = f"could not finish: {error}"
    return ReclaimedOwner(
        owner_id=abandoned.owner_id,
        directory=owner_dir,
        owner_pid=abandoned.owner_pid,
        killed=killed,
        kept=kept,
        removed=not owner_dir.exists(),
        note=note,
    )


def _left_alone(abandoned: AbandonedOwner) -> ReclaimedOwner:
    return ReclaimedOwner(
        owner_id=abandoned.owner_id,
        directory=abandoned.directory,
        owner_pid=None,
        killed=(),
        kept=(),
        removed=False,
        note=(
            f"no owner record ({abandoned.directory} lacks the user.corral.owner xattr), so "
            "left alone; if its owner is gone, kill its processes and rmdir it by hand"
        ),
    )


def reclaim_abandoned(
    *, base: Path | None = None, kill_timeout_s: float = 5.0
) -> list[ReclaimedOwner]:
    """Kill the units of dead owners under ``base``, remove their cgroups, report it.

    Owners that are alive are not touched and not reported; owner cgroups without an
    owner record are reported but left alone; ``detached`` units are spared. Errors on
    one owner (a process that outlives SIGKILL for ``kill_timeout_s``) are reported in
    its ``note`` and do not stop the others.
    """
    reports = []
    for abandoned in find_abandoned(base=base):
        if abandoned.recorded:
            reports.append(_reclaim_one(abandoned, kill_timeout_s=kill_timeout_s))
        else:
            reports.append(_left_alone(abandoned))
    return reports
