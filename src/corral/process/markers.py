"""The CORRAL_* environment markers every contained process carries.

They are how a /proc scan attributes a process to its owner, unit and generation even
after it escaped the process tree with ``setsid()`` or a double fork (P2, P4), and how
``detach()``, called inside a task, learns which containment it is in.
"""

from __future__ import annotations

import re

from corral.process.errors import ProcessError

__all__ = [
    "CGROUP",
    "CONTAINMENT",
    "DETACHED_UNIT",
    "GENERATION",
    "OWNER",
    "RECORDS",
    "UNIT",
    "check_id",
]

OWNER = "CORRAL_OWNER"  # the supervisor or worker that contains the process
UNIT = "CORRAL_UNIT"  # the unit (pool process, program instance) it belongs to
GENERATION = "CORRAL_GENERATION"  # which start of the program it comes from (P4)
CONTAINMENT = "CORRAL_CONTAINMENT"  # "cgroup" or "subreaper"
CGROUP = "CORRAL_CGROUP"  # cgroup strategy: the unit's cgroup directory
RECORDS = "CORRAL_RECORDS"  # directory where detach() records detached processes

DETACHED_UNIT = "detached"

_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def check_id(kind: str, value: str) -> str:
    """Validate an owner or unit id (it becomes a cgroup directory name)."""
    if not _ID.fullmatch(value) or value in (".", ".."):
        raise ProcessError(
            f"{kind} {value!r} is not a valid id: use 1-64 letters, digits, '_', '.' or '-'"
        )
    return value
