"""A pool process's tie to its worker main, and its own memory use."""

from __future__ import annotations

import os
import signal
import sys

from corral.exitcodes import ExitCode

__all__ = ["exit_with_parent", "rss_bytes"]

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def exit_with_parent(parent_pid: int) -> None:
    """Die with the worker main: a parent-death signal, plus a check that it is still there.

    The check closes the race where the main died before the signal was armed.
    """
    if sys.platform.startswith("linux"):
        from corral.process.prctl import set_parent_death_signal

        set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent_pid:
        sys.exit(ExitCode.PARENT_GONE)


def rss_bytes() -> int:
    """Current resident set size (not the peak), from /proc/self/statm."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return 0
