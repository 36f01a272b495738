"""detach(): hand a process over from its task's unit to the owner's ``detached`` unit.

Seed 001: a task starts a long-lived helper with ``nohup`` and wants it to outlive the
task, but a group kill takes it down, and without a group kill the worker's own
processes stray. ``detach()`` is the explicit middle way (P2): the process leaves the
task's unit, so ``kill_tree`` of the task spares it, yet it stays recorded, visible to
``audit`` (CORRAL_UNIT=detached) and a descendant of the owner, which still reaps it.

It runs inside the task, so it learns the containment from the markers the spawning
side exported: CORRAL_CONTAINMENT, CORRAL_CGROUP (the unit's cgroup) and CORRAL_RECORDS.

- cgroup: the process, and its existing descendants, move into the ``detached`` sibling
  cgroup; what it starts later is born there.
- fallback: the process starts a new session when it can (a process-group leader
  cannot, and is then excluded by its record alone), and the record file makes the
  unit's membership scan skip it and its descendants.

In both, CORRAL_UNIT=detached is written to ``os.environ`` when the caller detaches
itself, so children it starts afterwards carry the new marker.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from corral.process import audit, markers, procfs
from corral.process.errors import ProcessError

__all__ = ["detach", "detach_pid", "recorded"]


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ProcessError(
            f"detach(): {name} is not set: this process was not started inside a corral "
            "unit, so there is nothing to detach from (call it from a task's process)"
        )
    return value


def detach(*, pid: int | None = None) -> Path:
    """Move this process (or ``pid``, one of its children) to the detached unit.

    Returns the record file. Raises ProcessError outside a corral unit.
    """
    kind = _env(markers.CONTAINMENT)
    records = Path(_env(markers.RECORDS))
    target = os.getpid() if pid is None else pid
    owner_cgroup = Path(_env(markers.CGROUP)).parent if kind == "cgroup" else None
    path = detach_pid(target, owner_cgroup=owner_cgroup, records=records, is_self=pid is None)
    if pid is None:
        if owner_cgroup is not None:
            os.environ[markers.CGROUP] = str(owner_cgroup / markers.DETACHED_UNIT)
        os.environ[markers.UNIT] = markers.DETACHED_UNIT
    return path


def detach_pid(
    target: int, *, owner_cgroup: Path | None, records: Path, is_self: bool = False
) -> Path:
    """Move ``target`` and its descendants to the owner's detached unit; the record file.

    ``owner_cgroup`` is the owner's cgroup directory (cgroup strategy) or None
    (fallback). Used by :func:`detach` inside a task, and by an owner that hands
    processes over itself (a supervisor's ``keep`` rule).
    """
    start = procfs.start_ticks_of(target)
    if start is None:
        raise ProcessError(f"detach(pid={target}): no such process")
    if owner_cgroup is not None:
        _move_to_detached_cgroup(target, owner_cgroup / markers.DETACHED_UNIT)
    else:
        _leave_process_group(target, is_self)
    return _write_record(records, target, start)


def _move_to_detached_cgroup(target: int, destination: Path) -> None:
    destination.mkdir(exist_ok=True)
    # The target first, so it can fork no new child into the old unit meanwhile; then
    # its existing descendants.
    family = [target, *sorted(audit.descendants(audit.scan(), [target]))]
    for member in family:
        try:
            with open(destination / "cgroup.procs", "w") as f:
                f.write(str(member))
        except ProcessLookupError:
            continue
        except OSError as e:
            raise ProcessError(f"detach(): cannot move pid {member} to {destination}: {e}") from e


def _leave_process_group(target: int, is_self: bool) -> None:
    # A group leader cannot setsid (EPERM); its record alone keeps it out of the unit.
    with contextlib.suppress(PermissionError, ProcessLookupError):
        if is_self:
            os.setsid()
        else:
            os.setpgid(target, target)


def _write_record(records: Path, pid: int, start_ticks: int) -> Path:
    directory = records / markers.DETACHED_UNIT
    directory.mkdir(parents=True, exist_ok=True)
    record = {
        "pid": pid,
        "start_ticks": start_ticks,
        "from_unit": os.environ.get(markers.UNIT),
        "generation": os.environ.get(markers.GENERATION),
        "owner": os.environ.get(markers.OWNER),
        "cmdline": list(procfs.cmdline_of(pid)),
        "detached_at": time.time(),
    }
    path = directory / f"{pid}-{start_ticks}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    tmp.rename(path)  # readers never see half a record
    return path


def recorded(records: Path) -> list[tuple[int, int]]:
    """(pid, start_ticks) of detached processes still alive; stale records are removed."""
    directory = records / markers.DETACHED_UNIT
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    alive = []
    for name in names:
        if not name.endswith(".json"):
            continue
        pid, _, start = name[: -len(".json")].partition("-")
        st = procfs.stat_of(int(pid))
        if st is not None and st.start_ticks == int(start) and not st.zombie:
            alive.append((int(pid), int(start)))
        else:
            with contextlib.suppress(FileNotFoundError):
                (directory / name).unlink()
    return alive
