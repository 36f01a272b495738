"""ProcessRef: a process named so that a reused pid can never be mistaken for it.

A bare pid is recycled by the kernel once its process is reaped, so signalling a
remembered pid can hit a stranger (P3). A ``ProcessRef`` holds a pidfd where the kernel
offers one (Linux 5.3+): signals sent through it reach the original process or fail
with ESRCH. Without pidfds it keeps (pid, start time from /proc/PID/stat field 22) and
checks the start time before every action; that leaves a window of microseconds
between check and ``kill``, which is the best a pid-only system can do.

``ProcessRef.of(pid)`` itself trusts the pid for a moment: call it for your own
unreaped children (whose pids cannot be recycled) or right after learning the pid.
"""

from __future__ import annotations

import os
import select
import signal
from types import TracebackType

from corral.process import procfs
from corral.process.errors import ProcessError

__all__ = ["ProcessRef"]


def _open_pidfd(pid: int) -> int | None:
    """A pidfd for ``pid``, or None where the kernel or Python lacks them."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        fd: int = pidfd_open(pid)
    except ProcessLookupError:
        raise
    except OSError:  # ENOSYS on old kernels, EPERM in some sandboxes
        return None
    return fd


class ProcessRef:
    """One process, identified by pidfd or by (pid, start time); never by a bare pid."""

    __slots__ = ("_pid", "_pidfd", "_start_ticks")

    def __init__(self, pid: int, *, start_ticks: int, pidfd: int | None = None) -> None:
        self._pid = pid
        self._start_ticks = start_ticks
        self._pidfd = pidfd

    @classmethod
    def of(cls, pid: int, *, use_pidfd: bool = True) -> ProcessRef:
        """Reference the process that has ``pid`` now; ProcessError if there is none."""
        procfs.require_linux("ProcessRef")
        start = procfs.start_ticks_of(pid)
        try:
            pidfd = _open_pidfd(pid) if use_pidfd else None
        except ProcessLookupError:
            start = None
        if start is None:
            raise ProcessError(f"ProcessRef.of({pid}): no process with pid {pid} exists")
        return cls(pid, start_ticks=start, pidfd=pidfd)

    @property
    def pid(self) -> int:
        """The process id (only meaningful together with ``start_ticks``)."""
        return self._pid

    @property
    def start_ticks(self) -> int:
        """Start time in clock ticks since boot, from /proc/PID/stat field 22."""
        return self._start_ticks

    @property
    def pidfd(self) -> int | None:
        """The pidfd held, if any: it becomes readable when the process exits."""
        return self._pidfd

    @property
    def key(self) -> tuple[int, int]:
        """(pid, start_ticks): unique for the life of the machine's boot."""
        return (self._pid, self._start_ticks)

    def _same_process_in_proc(self) -> procfs.Stat | None:
        st = procfs.stat_of(self._pid)
        if st is None or st.start_ticks != self._start_ticks:
            return None
        return st

    def alive(self) -> bool:
        """True until the process exits (a zombie awaiting its reaper counts as exited)."""
        if self._pidfd is not None:
            poller = select.poll()
            poller.register(self._pidfd, select.POLLIN)
            return not poller.poll(0)
        st = self._same_process_in_proc()
        return st is not None and not st.zombie

    def send_signal(self, sig: int) -> bool:
        """Send ``sig``; False if the process is gone (never signals a pid's new owner)."""
        if self._pidfd is not None:
            try:
                signal.pidfd_send_signal(self._pidfd, sig)
            except ProcessLookupError:
                return False
            return True
        if self._same_process_in_proc() is None:
            return False
        try:
            os.kill(self._pid, sig)
        except ProcessLookupError:
            return False
        return True

    def close(self) -> None:
        """Release the pidfd (the process itself is not touched)."""
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def __enter__(self) -> ProcessRef:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ProcessRef) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        how = "pidfd" if self._pidfd is not None else "start-time"
        return f"ProcessRef(pid={self._pid}, start_ticks={self._start_ticks}, by={how})"
