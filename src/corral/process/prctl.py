"""prctl(2) wrappers: child subreaper and parent-death signal (Linux only, via ctypes)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import signal

from corral.process import procfs
from corral.process.errors import ProcessError

__all__ = ["is_child_subreaper", "set_child_subreaper", "set_parent_death_signal"]

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37


@functools.cache
def _libc() -> ctypes.CDLL:
    procfs.require_linux("prctl")
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _prctl(option: int, arg: int | ctypes.c_void_p) -> None:
    if _libc().prctl(option, arg, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise ProcessError(f"prctl({option}) failed: {os.strerror(err)}")


def set_child_subreaper(enabled: bool = True) -> None:
    """Make orphaned descendants re-parent to this process instead of init (P2, P3)."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1 if enabled else 0)


def is_child_subreaper() -> bool:
    """True if this process is a child subreaper."""
    flag = ctypes.c_int(0)
    _prctl(PR_GET_CHILD_SUBREAPER, ctypes.cast(ctypes.byref(flag), ctypes.c_void_p))
    return flag.value != 0


def set_parent_death_signal(sig: int = signal.SIGKILL) -> None:
    """Have the kernel send ``sig`` to this process when its parent thread dies (0 clears).

    Call it in the child; it does not survive exec of a set-uid binary, and the "parent"
    is the thread that forked, so fork from the owner's main thread.
    """
    _prctl(PR_SET_PDEATHSIG, int(sig))
