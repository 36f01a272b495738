"""Audit: a /proc scan of processes and their CORRAL_* markers (``corral status --tree``).

The markers are read from /proc/PID/environ, which holds the environment a process
was exec'd with; that is why every contained process gets them at spawn, and why a
process forked without exec inherits its parent's. For a moment during exec the file
reads empty (the new stack is not set up yet), so membership never rests on markers
alone: process groups and ancestry back them up. Unreadable entries (other users'
processes, races with exit) are skipped rather than failing the scan.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from corral.process import markers, procfs

__all__ = ["ProcessInfo", "descendants", "find_escaped", "info_of", "scan"]


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """One process as /proc shows it, with its corral markers."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str
    start_ticks: int
    rss_bytes: int
    cmdline: tuple[str, ...]
    markers: dict[str, str] = field(default_factory=dict)

    @property
    def owner(self) -> str | None:
        """The CORRAL_OWNER marker, if present."""
        return self.markers.get(markers.OWNER)

    @property
    def unit(self) -> str | None:
        """The CORRAL_UNIT marker, if present."""
        return self.markers.get(markers.UNIT)

    @property
    def generation(self) -> int | None:
        """The CORRAL_GENERATION marker as a number, if present and numeric."""
        value = self.markers.get(markers.GENERATION, "")
        return int(value) if value.isdigit() else None

    @property
    def zombie(self) -> bool:
        """True once the process has exited and waits to be reaped."""
        return self.state in ("Z", "X")

    def describe(self) -> str:
        """``pid 123 (sleep 300)`` for log lines."""
        cmd = " ".join(self.cmdline) or "?"
        return f"pid {self.pid} ({cmd})"


def info_of(pid: int) -> ProcessInfo | None:
    """Read one process; None if it is gone."""
    st = procfs.stat_of(pid)
    if st is None:
        return None
    return ProcessInfo(
        pid=pid,
        ppid=st.ppid,
        pgid=st.pgid,
        sid=st.sid,
        state=st.state,
        start_ticks=st.start_ticks,
        rss_bytes=st.rss_pages * procfs.page_size(),
        cmdline=procfs.cmdline_of(pid),
        markers=procfs.markers_of(pid),
    )


def scan(unit: str | None = None, *, owner: str | None = None) -> list[ProcessInfo]:
    """Every process (or those marked with ``unit`` / ``owner``), this process excluded."""
    procfs.require_linux("audit.scan")
    me = os.getpid()
    found = []
    for pid in procfs.list_pids():
        if pid == me:
            continue
        info = info_of(pid)
        if info is None:
            continue
        if unit is not None and info.unit != unit:
            continue
        if owner is not None and info.owner != owner:
            continue
        found.append(info)
    return found


def descendants(infos: Iterable[ProcessInfo], roots: Iterable[int]) -> set[int]:
    """Pids under ``roots`` (roots excluded) following ppid links in one snapshot."""
    children: dict[int, list[int]] = {}
    for info in infos:
        children.setdefault(info.ppid, []).append(info.pid)
    found: set[int] = set()
    stack = list(roots)
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def find_escaped(owner: str, *, owner_pid: int | None = None) -> list[ProcessInfo]:
    """Live processes marked with ``owner`` that are no longer below the owner process.

    Those re-parented to init (seed 002's PPID-1 workers), which containment should make
    impossible: a non-empty answer is a bug report. ``owner_pid`` defaults to this process.
    """
    root = os.getpid() if owner_pid is None else owner_pid
    everything = scan()
    below = descendants(everything, [root])
    return [i for i in everything if i.owner == owner and not i.zombie and i.pid not in below]
