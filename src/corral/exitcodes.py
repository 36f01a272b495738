"""Every exit code corral's processes use, named in one place (P8).

A process killed by signal N is reported as ``128 + N``, as shells do.
"""

from __future__ import annotations

import enum
import signal

__all__ = ["ExitCode", "describe_exit"]


class ExitCode(enum.IntEnum):
    """Exit codes of ``corral`` commands and of worker pool processes."""

    OK = 0
    """Stopped as asked; every child ended normally."""
    FAILURE = 1
    """An unexpected error (a traceback is logged)."""
    USAGE = 2
    """Bad command-line usage."""
    CHILD_DIED = 3
    """The worker stopped cleanly, but a pool process died abnormally during the run."""
    TASK_FAILED = 4
    """``corral send --wait`` / ``corral result``: the task failed, was revoked or timed out."""
    SUPERVISOR_UNAVAILABLE = 5
    """``corral ctl``: no ``corral run`` answers on the control socket."""
    BROKER_UNAVAILABLE = 69
    """The broker could not be reached (EX_UNAVAILABLE)."""
    SOFTWARE = 70
    """Internal error; also a process forked inside a task that tried to return into
    corral's task runner and was ended by the fork guard (EX_SOFTWARE)."""
    CONFIG = 78
    """Bad configuration: unknown option, bad URL, app that cannot be imported (EX_CONFIG)."""
    RETIRED = 80
    """A pool process left on purpose (max tasks or memory per child); the worker replaces it."""
    PARENT_GONE = 81
    """A pool process found its worker main gone and left."""


def describe_exit(returncode: int) -> str:
    """``Popen.returncode`` in words: 'exited 3' or 'killed by SIGKILL (137)'."""
    if returncode < 0:
        number = -returncode
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return f"killed by {name} ({128 + number})"
    try:
        return f"exited {returncode} ({ExitCode(returncode).name})"
    except ValueError:
        return f"exited {returncode}"
