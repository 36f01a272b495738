"""Choosing a containment strategy (P2): cgroup v2 where possible, else the fallback.

``choose_containment()`` picks, at start, the strongest strategy this machine allows:

1. ``cgroup``: a writable cgroup v2 (found from /proc/self/cgroup and /proc/mounts);
2. ``subreaper``: child subreaper + a process group per unit + CORRAL_* markers, when
   there is no writable cgroup v2, or when forced (``force="subreaper"``).

Both implement ``corral.process.unit.Containment`` / ``Unit``; ``describe()`` says which
one runs, for ``corral doctor``.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Literal

from corral.process import procfs
from corral.process.cgroup import CgroupContainment, find_writable_cgroup
from corral.process.errors import ProcessError
from corral.process.reaper import Reaper, current_reaper
from corral.process.subreaper import SubreaperContainment
from corral.process.unit import Containment, Unit

__all__ = ["Containment", "Unit", "choose_containment"]

Strategy = Literal["cgroup", "subreaper"]
_STRATEGIES = ("cgroup", "subreaper")


def _records_dir(owner_id: str, records_dir: Path | None) -> Path:
    if records_dir is not None:
        return records_dir
    return Path(tempfile.gettempdir()) / "corral" / owner_id


def _reaper(reaper: Reaper | None) -> Reaper:
    if reaper is not None:
        return reaper
    return current_reaper() or Reaper().install()


def choose_containment(
    *,
    force: Strategy | None = None,
    owner_id: str | None = None,
    reaper: Reaper | None = None,
    records_dir: Path | None = None,
    cgroup_base: Path | None = None,
) -> Containment:
    """Create the owner's containment, the strongest available unless ``force`` says.

    ``reaper`` defaults to the process's installed one (installing one if needed);
    ``cgroup_base`` overrides the cgroup under which ``corral-<owner_id>`` is created.
    """
    procfs.require_linux("containment")
    if force is not None and force not in _STRATEGIES:
        raise ProcessError(
            f"choose_containment(): force={force!r} is not a strategy; use one of "
            f"{', '.join(_STRATEGIES)} or None"
        )
    owner = owner_id or uuid.uuid4().hex[:12]
    owner_reaper = _reaper(reaper)
    records = _records_dir(owner, records_dir)
    if force == "subreaper":
        return SubreaperContainment(
            owner_id=owner, reaper=owner_reaper, records_dir=records, reason="forced"
        )
    base = cgroup_base or find_writable_cgroup()
    if base is not None:
        return CgroupContainment(
            owner_id=owner, reaper=owner_reaper, records_dir=records, base=base
        )
    if force == "cgroup":
        raise ProcessError(
            "choose_containment(force='cgroup'): no writable cgroup v2 found (needs a "
            "cgroup2 mount and permission to create cgroups, e.g. root or systemd "
            "Delegate=yes); use force=None to fall back to subreaper containment"
        )
    return SubreaperContainment(
        owner_id=owner,
        reaper=owner_reaper,
        records_dir=records,
        reason="no writable cgroup v2",
    )
