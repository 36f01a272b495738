"""Reaper: the one place in a process that waits for children and records how they ended.

Design (P3). A ``waitpid(-1)`` loop is simple and wrong: it steals exit statuses from
``subprocess.Popen`` (whose ``wait()`` then reports 0 for a failed command) and from
``multiprocessing``. So the reaper never waits for "any child". Each ``reap_nowait()``:

1. peeks with ``waitid(P_ALL, WEXITED | WNOHANG | WNOWAIT)``: if no child has exited,
   it returns at once (the common case costs one syscall; nothing is consumed);
2. reaps each *watched* child by its own pid (``waitpid(pid, WNOHANG)``, or
   ``Popen.poll()`` for children it was handed as Popen objects, so the Popen and the
   reaper agree);
3. if ``reap_orphans`` is on, scans /proc for zombies whose parent is this process and
   reaps those that no Popen/multiprocessing object waits for (see ``waiters``):
   orphans re-parented to us as child subreaper or as PID 1. A peek alone cannot
   find them: ``waitid`` shows one zombie at a time, and it may be a Popen's.
   The scan is skipped while a spawn is in progress (its pid is not yet recorded).

Every status is recorded under (pid, start time), so ``status_of(ref)`` can never
return the status of an earlier process that had the same pid.

SIGCHLD: ``install_sigchld()`` sets a handler that only writes a byte to a pipe (the
self-pipe trick); the owner's loop selects on ``fileno()`` (or calls
``wait_sigchld(timeout_s)``) and then calls ``reap_nowait()``. A thread that calls
``reap_nowait()`` in a loop works as well; the reaper is thread-safe.

There is one reaper per process: ``install()`` refuses a second one. Code in the
owner process that forks by hand does it inside ``spawning()`` and then ``watch_pid``.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

from corral.process import procfs, waiters
from corral.process.errors import ProcessError
from corral.process.exitstatus import ExitStatus
from corral.process.ref import ProcessRef

__all__ = ["Reaper", "ReaperStatistics", "current_reaper"]

_WAIT_SLICE_S = 0.05
_current: dict[str, Reaper | None] = {"reaper": None}


def current_reaper() -> Reaper | None:
    """The reaper installed in this process, if any."""
    return _current["reaper"]


@dataclass(frozen=True, slots=True)
class ReaperStatistics:
    """A snapshot for ``corral status``."""

    watched: int
    reaped: int
    orphans_reaped: int
    records: int


@dataclass(slots=True)
class _Watch:
    ref: ProcessRef
    popen: subprocess.Popen[Any] | None


class Reaper:
    """Owns every wait call of this process; see the module docstring for the design."""

    def __init__(self, *, reap_orphans: bool = True, max_records: int = 4096) -> None:
        self._reap_orphans = reap_orphans
        self._max_records = max_records
        self._lock = threading.RLock()
        self._watched: dict[int, _Watch] = {}
        self._records: OrderedDict[tuple[int, int], ExitStatus] = OrderedDict()
        self._reaped = 0
        self._orphans = 0
        self._pipe: tuple[int, int] | None = None
        self._previous_handler: Any = None
        self._owner_pid = os.getpid()
        self.sigchld_count = 0
        """SIGCHLDs seen since install_sigchld(): a loop that reaps only when it changed
        skips a waitid per iteration (the handler only counts and writes a byte)."""
        self._due_seen = -1  # sigchld_count at the last reap_if_due that reaped
        self._due_at = 0.0

    # -- lifecycle ---------------------------------------------------------------

    def install(self) -> Reaper:
        """Become this process's reaper; ProcessError if another one is installed."""
        procfs.require_linux("Reaper")
        other = _current["reaper"]
        if other is not None and other is not self and other._owner_pid == os.getpid():
            raise ProcessError(
                "Reaper.install(): this process already has a reaper; use current_reaper() "
                "instead of creating a second one (two reapers would steal each other's "
                "exit statuses)"
            )
        waiters.install()
        _current["reaper"] = self
        return self

    def uninstall(self) -> None:
        """Stop being the process's reaper and restore the SIGCHLD handler."""
        self.uninstall_sigchld()
        if _current["reaper"] is self:
            _current["reaper"] = None

    # -- what we are responsible for --------------------------------------------

    def watch(self, ref: ProcessRef, *, popen: subprocess.Popen[Any] | None = None) -> None:
        """Take responsibility for a child; pass its Popen if one started it."""
        with self._lock:
            self._watched[ref.pid] = _Watch(ref, popen)

    def watch_pid(self, pid: int) -> ProcessRef:
        """Reference and watch a child created by ``os.fork`` (call inside ``spawning()``)."""
        ref = ProcessRef.of(pid)
        self.watch(ref)
        return ref

    def spawning(self) -> contextlib.AbstractContextManager[None]:
        """Wrap a hand-made fork: unknown zombies are left alone until it is watched."""
        return waiters.spawn_scope()

    def forget(self, ref: ProcessRef) -> None:
        """Drop the record of a process whose status was read (bounds memory)."""
        with self._lock:
            self._records.pop(ref.key, None)
            watch = self._watched.get(ref.pid)
            if watch is not None and watch.ref == ref:
                del self._watched[ref.pid]

    # -- reaping -------------------------------------------------------------------

    def reap_nowait(self) -> list[ExitStatus]:
        """Reap every exited child we are responsible for; return their statuses."""
        with self._lock:
            if not _any_exited_child():
                return []
            reaped = self._reap_watched()
            if self._reap_orphans:
                reaped += self._reap_orphans_pass()
            return reaped

    def reap_if_due(self, *, every_s: float) -> None:
        """:meth:`reap_nowait` if a SIGCHLD came since the last time it ran here, or
        ``every_s`` passed (in case a task replaced the handler): a loop that calls this
        per iteration costs no ``waitid`` per iteration (one cost ~10% of a no-op task).
        Needs :meth:`install_sigchld`."""
        seen, now = self.sigchld_count, time.monotonic()
        if seen == self._due_seen and now - self._due_at < every_s:
            return
        self._due_seen, self._due_at = seen, now
        if self._pipe is not None:
            self.drain_sigchld()
        self.reap_nowait()

    def _reap_watched(self) -> list[ExitStatus]:
        reaped = []
        for pid, watch in list(self._watched.items()):
            status = _reap_one(watch)
            if status is None:
                continue
            del self._watched[pid]
            watch.ref.close()
            self._record(watch.ref.key, status)
            reaped.append(status)
        return reaped

    def _reap_orphans_pass(self) -> list[ExitStatus]:
        reaped = []
        with waiters.lock():
            if waiters.spawns_in_progress():
                return []  # a spawn's pid is not recorded yet; the next pass gets it
            waiters.prune()
            for st in _zombie_children():
                if st.pid in self._watched or waiters.owned_elsewhere(st.pid):
                    continue
                status = _waitpid_nowait(st.pid)
                if status is not None:
                    self._record((st.pid, st.start_ticks), status)
                    self._orphans += 1
                    reaped.append(status)
        return reaped

    def _record(self, key: tuple[int, int], status: ExitStatus) -> None:
        self._records[key] = status
        self._reaped += 1
        while len(self._records) > self._max_records:
            self._records.popitem(last=False)

    def status_of(self, ref: ProcessRef) -> ExitStatus | None:
        """How ``ref`` ended, if the reaper has reaped it."""
        with self._lock:
            return self._records.get(ref.key)

    def wait_exit(self, ref: ProcessRef, *, timeout_s: float) -> ExitStatus:
        """Block until ``ref`` is reaped; ProcessError after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.reap_nowait()
            status = self.status_of(ref)
            if status is not None:
                return status
            self._check_reapable(ref)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProcessError(
                    f"wait_exit(): pid {ref.pid} still running after timeout_s={timeout_s}; "
                    "stop it first (kill_tree) or wait longer"
                )
            _wait_for_exit(ref, min(remaining, _WAIT_SLICE_S))

    def _check_reapable(self, ref: ProcessRef) -> None:
        if ref.alive() or self.status_of(ref) is not None:
            return
        st = procfs.stat_of(ref.pid)
        ours = st is not None and st.start_ticks == ref.start_ticks and st.ppid == os.getpid()
        if not ours:
            raise ProcessError(
                f"wait_exit(): pid {ref.pid} exited but its status is not ours to collect "
                "(not a child of this process, or another waiter took it); watch children "
                "with the process's one Reaper"
            )

    # -- SIGCHLD -------------------------------------------------------------------

    def install_sigchld(self) -> None:
        """Wake ``fileno()`` on SIGCHLD (main thread only; the handler only writes a byte)."""
        if self._pipe is not None:
            return
        read_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._pipe = (read_fd, write_fd)
        self._previous_handler = signal.signal(signal.SIGCHLD, self._on_sigchld)

    def uninstall_sigchld(self) -> None:
        """Restore the previous SIGCHLD handler and close the wake-up pipe."""
        if self._pipe is None:
            return
        signal.signal(signal.SIGCHLD, self._previous_handler or signal.SIG_DFL)
        for fd in self._pipe:
            os.close(fd)
        self._pipe = None

    def _on_sigchld(self, signum: int, frame: FrameType | None) -> None:
        self.sigchld_count += 1
        if self._pipe is None:
            return
        with contextlib.suppress(BlockingIOError):  # a full pipe already means "wake up"
            os.write(self._pipe[1], b"\0")

    def fileno(self) -> int:
        """The read end of the SIGCHLD wake-up pipe, for select/poll loops."""
        if self._pipe is None:
            raise ProcessError("Reaper.fileno(): call install_sigchld() first")
        return self._pipe[0]

    def wait_sigchld(self, *, timeout_s: float) -> bool:
        """Block until a SIGCHLD arrives (True) or ``timeout_s`` passes (False)."""
        ready, _, _ = select.select([self.fileno()], [], [], timeout_s)
        if not ready:
            return False
        self.drain_sigchld()
        return True

    def drain_sigchld(self) -> None:
        """Consume the wake-up bytes of SIGCHLDs already seen."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self.fileno(), 512):
                pass

    def statistics(self) -> ReaperStatistics:
        """Counts for status output."""
        with self._lock:
            return ReaperStatistics(
                watched=len(self._watched),
                reaped=self._reaped,
                orphans_reaped=self._orphans,
                records=len(self._records),
            )

    @contextlib.contextmanager
    def installed(self) -> Iterator[Reaper]:
        """``with Reaper().installed() as reaper:``: install, then uninstall on exit."""
        self.install()
        try:
            yield self
        finally:
            self.uninstall()


def _any_exited_child() -> bool:
    """Peek without consuming: has any child exited?"""
    try:
        found = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return found is not None and found.si_pid != 0


def _reap_one(watch: _Watch) -> ExitStatus | None:
    if watch.popen is not None:
        code = watch.popen.poll()
        return None if code is None else ExitStatus.from_returncode(watch.ref.pid, code)
    return _waitpid_nowait(watch.ref.pid)


def _waitpid_nowait(pid: int) -> ExitStatus | None:
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None
    if got == 0:
        return None
    return ExitStatus.from_wait_status(pid, status)


def _zombie_children() -> Iterator[procfs.Stat]:
    me = os.getpid()
    for pid in procfs.list_pids():
        st = procfs.stat_of(pid)
        if st is not None and st.ppid == me and st.zombie:
            yield st


def _wait_for_exit(ref: ProcessRef, timeout_s: float) -> None:
    """Sleep until ``ref`` exits or ``timeout_s`` passes (pidfd when we have one)."""
    if ref.pidfd is None or not ref.alive():
        time.sleep(min(timeout_s, 0.01))
        return
    poller = select.poll()
    poller.register(ref.pidfd, select.POLLIN)
    poller.poll(timeout_s * 1000)
