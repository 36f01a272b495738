"""Fallback containment: child subreaper + a process group per unit + CORRAL_* markers.

Used where no writable cgroup v2 exists (containers without delegation, non-root, old
kernels) or when forced. Membership of a unit is the union, in one /proc snapshot, of

- processes in the process groups of the unit's spawned/adopted processes,
- processes whose environment carries this owner's CORRAL_OWNER and the unit's
  CORRAL_UNIT (they find ``setsid()`` escapes, seed 002),
- descendants of every process already known to be a member (membership is sticky:
  once seen, a (pid, start time) stays a member, so a child keeps belonging after
  its parent died and it re-parented to us, the subreaper),

minus processes recorded by ``detach()`` and their descendants. What clears its
environment, calls ``setsid()`` and re-parents before we ever saw it is the one gap;
``audit.find_escaped`` exists to report such processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from corral.process import audit, detach, markers
from corral.process.audit import ProcessInfo
from corral.process.reaper import Reaper
from corral.process.ref import ProcessRef
from corral.process.unit import Containment, Unit

__all__ = ["DetachedSubreaperUnit", "SubreaperContainment", "SubreaperUnit"]


class SubreaperUnit(Unit):
    """A unit tracked by process groups, markers and ancestry."""

    def __init__(self, containment: SubreaperContainment, unit_id: str, *, generation: int):
        super().__init__(containment, unit_id, generation=generation)
        self._owner_id = containment.owner_id
        self._records = containment.records_dir
        self._pgids: set[int] = set()
        self._known: set[tuple[int, int]] = set()

    def _track(self, ref: ProcessRef) -> None:
        self._pgids.add(ref.pid)
        self._known.add(ref.key)

    def _enter(self, pid: int) -> None:
        # Only possible for our own child before it execs; a forked pool process qualifies.
        with contextlib.suppress(PermissionError, ProcessLookupError):
            os.setpgid(pid, pid)

    def members(self) -> list[ProcessInfo]:
        """The unit's live processes, as ProcessInfo (one /proc snapshot)."""
        infos = {i.pid: i for i in audit.scan() if not i.zombie}
        excluded = self._detached_pids(infos)
        seeds = {p for p, i in infos.items() if self._is_seed(i)} - excluded
        member_pids = (seeds | audit.descendants(infos.values(), seeds)) - excluded
        member_pids.discard(os.getpid())
        self._known = {(p, infos[p].start_ticks) for p in member_pids}
        # Forget groups with no member left, so a stranger reusing the pgid is not ours.
        self._pgids &= {infos[p].pgid for p in member_pids}
        return [infos[p] for p in sorted(member_pids)]

    def _is_seed(self, info: ProcessInfo) -> bool:
        if (info.pid, info.start_ticks) in self._known:
            return True
        if info.pgid in self._pgids:
            return True
        return info.owner == self._owner_id and info.unit == self.unit_id

    def _detached_pids(self, infos: dict[int, ProcessInfo]) -> set[int]:
        if self.unit_id == markers.DETACHED_UNIT:
            return set()
        roots = {pid for pid, start in detach.recorded(self._records) if _same(infos, pid, start)}
        marked = {p for p, i in infos.items() if i.unit == markers.DETACHED_UNIT}
        roots |= marked
        return roots | audit.descendants(infos.values(), roots)

    def pids(self) -> list[int]:
        """Live processes in the unit, at any depth."""
        return [i.pid for i in self.members()]

    def kill_all(self) -> None:
        """SIGKILL every member found now (kill_tree repeats it until the unit is empty)."""
        self.signal_all(signal.SIGKILL)


def _same(infos: dict[int, ProcessInfo], pid: int, start_ticks: int) -> bool:
    info = infos.get(pid)
    return info is not None and info.start_ticks == start_ticks


class DetachedSubreaperUnit(SubreaperUnit):
    """The ``detached`` unit: recorded processes, their descendants, detached markers."""

    _recorded: frozenset[tuple[int, int]] = frozenset()

    def _is_seed(self, info: ProcessInfo) -> bool:
        if (info.pid, info.start_ticks) in self._recorded:
            return True
        return super()._is_seed(info)

    def members(self) -> list[ProcessInfo]:
        """Recorded detached processes and what they started."""
        self._recorded = frozenset(detach.recorded(self._records))
        return super().members()


class SubreaperContainment(Containment):
    """The owner is a child subreaper; units are process groups plus markers."""

    kind = "subreaper"

    def __init__(
        self, *, owner_id: str, reaper: Reaper, records_dir: Path, reason: str = "forced"
    ) -> None:
        super().__init__(owner_id=owner_id, reaper=reaper, records_dir=records_dir)
        self._reason = reason

    def _new_unit(self, unit_id: str, *, generation: int) -> Unit:
        if unit_id == markers.DETACHED_UNIT:
            return DetachedSubreaperUnit(self, unit_id, generation=generation)
        return SubreaperUnit(self, unit_id, generation=generation)

    def describe(self) -> str:
        """One line for ``corral doctor``."""
        return f"subreaper + process groups + CORRAL_UNIT markers (fallback: {self._reason})"
