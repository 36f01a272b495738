"""Other waiters: children that ``subprocess`` or ``multiprocessing`` will wait for themselves.

The reaper must never reap those: ``Popen.wait()`` would then get ECHILD and report
exit code 0 for a command that failed (the reason ``waitpid(-1)`` loops are banned by
P3). ``install()`` wraps ``subprocess.Popen._execute_child`` once per interpreter so
every Popen's pid is recorded, with a weak reference, the moment it exists.

Spawns in progress are counted: a child can exit (and become a zombie) before its
Popen records the pid, so the reaper skips its orphan pass while any spawn runs.
Code that forks by hand wraps the fork in ``spawn_scope()`` for the same reason.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["install", "lock", "owned_elsewhere", "prune", "spawn_scope", "spawns_in_progress"]

_state = {"lock": threading.Condition()}
_popens: dict[int, weakref.ref[subprocess.Popen[Any]]] = {}
_spawns = {"count": 0, "pid": os.getpid()}
_installed = {"done": False}


def _reset_after_fork() -> None:
    # A forked child has none of its parent's children: start clean, with a fresh lock
    # (the parent's may have been held by another thread at the moment of fork).
    _state["lock"] = threading.Condition()
    _popens.clear()
    _spawns.update(count=0, pid=os.getpid())


@contextlib.contextmanager
def spawn_scope() -> Iterator[None]:
    """Mark a fork/spawn in progress: the reaper leaves unknown zombies alone meanwhile."""
    with _state["lock"]:
        _spawns["count"] += 1
    me = os.getpid()
    try:
        yield
    finally:
        if os.getpid() == me:  # a forked child leaving the scope must not count down ours
            with _state["lock"]:
                _spawns["count"] -= 1


def spawns_in_progress() -> int:
    """How many spawns are under way in this process right now."""
    return _spawns["count"]


def lock() -> threading.Condition:
    """The lock that orders spawns against the reaper's orphan pass."""
    return _state["lock"]


def _wrap(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def _execute_child(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
        with spawn_scope():
            original(self, *args, **kwargs)
            with _state["lock"]:
                _popens[self.pid] = weakref.ref(self)

    _execute_child.__corral_wrapped__ = True  # type: ignore[attr-defined]
    return _execute_child


def install() -> None:
    """Start recording Popen pids (idempotent, once per interpreter)."""
    if _installed["done"]:
        return
    original = subprocess.Popen._execute_child  # type: ignore[attr-defined]
    if not getattr(original, "__corral_wrapped__", False):
        subprocess.Popen._execute_child = _wrap(original)  # type: ignore[attr-defined]
    os.register_at_fork(after_in_child=_reset_after_fork)
    _installed["done"] = True


def _popen_waits_for(pid: int) -> bool:
    ref = _popens.get(pid)
    popen = ref() if ref is not None else None
    if popen is not None and popen.returncode is None:
        return True
    # A Popen collected while its child ran parks itself in subprocess._active and is
    # polled by the next Popen: still a waiter.
    active = getattr(subprocess, "_active", None) or []
    return any(p.pid == pid and p.returncode is None for p in active)


def _multiprocessing_waits_for(pid: int) -> bool:
    mp = sys.modules.get("multiprocessing.process")
    children = getattr(mp, "_children", None) or ()
    return any(getattr(c, "pid", None) == pid and c.returncode is None for c in children)


def owned_elsewhere(pid: int) -> bool:
    """True if a live Popen or multiprocessing object in this process will wait for ``pid``."""
    return _popen_waits_for(pid) or _multiprocessing_waits_for(pid)


def prune() -> None:
    """Forget Popens that are gone or have been waited for."""
    with _state["lock"]:
        for pid, ref in list(_popens.items()):
            popen = ref()
            if popen is None or popen.returncode is not None:
                del _popens[pid]
