"""corral.process: process ownership primitives (standard library only, Linux first).

- ``ProcessRef``: a process by pidfd or (pid, start time), never a bare pid.
- ``Reaper``: the one place that waits for children; never steals from Popen.
- ``choose_containment`` / ``Containment`` / ``Unit``: cgroup v2 or subreaper units.
- ``kill_tree``: stop a unit's whole tree within grace + kill timeout.
- ``detach``: hand a process over to the owner's ``detached`` unit.
- ``audit``: /proc scan with CORRAL_* markers; ``ForkGuard``: no fork escapes.
- ``reclaim_abandoned``: kill and remove the cgroup units of dead owners.

Nothing here imports the rest of corral.
"""

from __future__ import annotations

from corral.process.audit import ProcessInfo, find_escaped, scan
from corral.process.containment import choose_containment
from corral.process.detach import detach
from corral.process.errors import ProcessError, UnsupportedPlatform
from corral.process.exitstatus import ExitStatus
from corral.process.forkguard import ForkGuard
from corral.process.prctl import is_child_subreaper, set_child_subreaper, set_parent_death_signal
from corral.process.reaper import Reaper, ReaperStatistics, current_reaper
from corral.process.reclaim import (
    AbandonedOwner,
    ReclaimedOwner,
    find_abandoned,
    reclaim_abandoned,
)
from corral.process.ref import ProcessRef
from corral.process.tree import KilledProcess, KillReport, kill_tree
from corral.process.unit import Containment, Unit

__all__ = [
    "AbandonedOwner",
    "Containment",
    "ExitStatus",
    "ForkGuard",
    "KillReport",
    "KilledProcess",
    "ProcessError",
    "ProcessInfo",
    "ProcessRef",
    "Reaper",
    "ReaperStatistics",
    "ReclaimedOwner",
    "Unit",
    "UnsupportedPlatform",
    "choose_containment",
    "current_reaper",
    "detach",
    "find_abandoned",
    "find_escaped",
    "is_child_subreaper",
    "kill_tree",
    "reclaim_abandoned",
    "scan",
    "set_child_subreaper",
    "set_parent_death_signal",
]
