"""This process's pid without a system call per question.

Objects that must not be shared across ``fork`` (broker connections) compare the
pid they were made in with the current one on every use. ``os.getpid`` is a system
call (glibc stopped caching it), so on a hot path such as ``delay`` the check cost
as much as the rest of the bookkeeping: here the pid is read once per process and
refreshed in every child forked by Python (``os.fork``, multiprocessing).
"""

from __future__ import annotations

import os

__all__ = ["current_pid"]

_PID = [os.getpid()]


def _after_fork_in_child() -> None:
    _PID[0] = os.getpid()


os.register_at_fork(after_in_child=_after_fork_in_child)


def current_pid() -> int:
    """``os.getpid()``, cached; correct in a child forked through Python."""
    return _PID[0]
