"""Reading /proc: the few fields corral's process code needs, parsed in one place.

Every reader returns ``None`` (or an empty value) for a process that is gone, because
a process can exit between any two reads; callers treat "gone" as a normal answer.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from corral.process.errors import UnsupportedPlatform

__all__ = [
    "Stat",
    "cmdline_of",
    "environ_of",
    "list_pids",
    "markers_of",
    "page_size",
    "require_linux",
    "start_ticks_of",
    "stat_of",
]

PROC = "/proc"
MARKER_PREFIX = b"CORRAL_"


def require_linux(feature: str) -> None:
    """Raise `UnsupportedPlatform` unless we run on Linux with /proc mounted."""
    if not sys.platform.startswith("linux"):
        raise UnsupportedPlatform(
            f"{feature} needs Linux (/proc, prctl, cgroup v2); this is {sys.platform}: "
            "run corral's process supervision on Linux"
        )
    if not os.path.isdir(f"{PROC}/self"):
        raise UnsupportedPlatform(f"{feature} needs /proc; mount it (mount -t proc proc /proc)")


@dataclass(frozen=True, slots=True)
class Stat:
    """The fields of /proc/PID/stat that identify and place a process."""

    pid: int
    state: str
    ppid: int
    pgid: int
    sid: int
    start_ticks: int  # field 22: start time in clock ticks since boot; pid + this = identity
    rss_pages: int

    @property
    def zombie(self) -> bool:
        """True once the process has exited (zombie or dead), before or after reaping."""
        return self.state in ("Z", "X")


def stat_of(pid: int) -> Stat | None:
    """Parse /proc/PID/stat; None if the process is gone."""
    try:
        with open(f"{PROC}/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    rest = data[data.rindex(b")") + 2 :].split()
    return Stat(
        pid=pid,
        state=rest[0].decode(),
        ppid=int(rest[1]),
        pgid=int(rest[2]),
        sid=int(rest[3]),
        start_ticks=int(rest[19]),
        rss_pages=int(rest[21]),
    )


def start_ticks_of(pid: int) -> int | None:
    """A process's start time (clock ticks since boot), or None if it is gone."""
    st = stat_of(pid)
    return None if st is None else st.start_ticks


def cmdline_of(pid: int) -> tuple[str, ...]:
    """A process's argv (empty for kernel threads, zombies and gone processes)."""
    try:
        with open(f"{PROC}/{pid}/cmdline", "rb") as f:
            data = f.read()
    except OSError:
        return ()
    return tuple(p.decode(errors="replace") for p in data.split(b"\0") if p)


def environ_of(pid: int) -> bytes:
    """A process's environment as it was at exec (empty if gone, a zombie, or unreadable)."""
    try:
        with open(f"{PROC}/{pid}/environ", "rb") as f:
            return f.read()
    except OSError:
        return b""


def markers_of(pid: int) -> dict[str, str]:
    """The ``CORRAL_*`` variables of a process's environment (at exec time)."""
    found = {}
    for item in environ_of(pid).split(b"\0"):
        if item.startswith(MARKER_PREFIX) and b"=" in item:
            key, _, value = item.partition(b"=")
            found[key.decode(errors="replace")] = value.decode(errors="replace")
    return found


def list_pids() -> list[int]:
    """Every pid currently in /proc (threads excluded)."""
    return [int(name) for name in os.listdir(PROC) if name.isdigit()]


def page_size() -> int:
    """Bytes per page, for turning rss pages into bytes."""
    return os.sysconf("SC_PAGE_SIZE")
