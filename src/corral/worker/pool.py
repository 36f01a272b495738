"""The worker main's view of one pool process: its pipes, and the tasks it holds.

The main always knows which task (sequence number, hence delivery and lease
token) each pool process runs and since when: the head of ``outstanding`` is
running, the rest wait in the pipe in order. That is what a hard time limit, a
revoke with terminate, a dead child and a warm stop act on.
"""

from __future__ import annotations

import collections
import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from corral.process import ProcessRef, Unit
from corral.worker import protocol

__all__ = ["PoolHandle", "PoolSpec", "TaskLimits"]

FAST_TASK_S = 0.005
"""Tasks quicker than this (on average) are batched: the pool process is handed
up to ``max_window`` of them at once, so each pipe write and broker commit
carries many tasks."""
LEFTOVER_CHECK_S = 1.0
"""A busy pool process is given no new task once a finished task has waited this
long for its leftover check (which runs when the pool process is idle)."""
YIELD_AFTER_S = 0.25
"""A task running longer than this makes its pool process hand back the tasks
queued behind it, and receive no more until it finishes."""


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """How to start pool processes."""

    app_ref: str
    max_memory_mb: int
    log_level: str
    log_format: str


@dataclass(frozen=True, slots=True)
class TaskLimits:
    """What a pool process reported about one task in its hello."""

    timeout_s: float
    retries: int
    retry_backoff_s: float
    retry_backoff_max_s: float
    retry_jitter: bool
    retry_on_timeout: bool
    leftovers: str


class PoolHandle:
    """One pool process as the main sees it."""

    def __init__(self, spec: PoolSpec, unit: Unit, env: dict[str, str]) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        self.unit = unit
        self.generation = unit.generation
        try:
            self.ref: ProcessRef = unit.spawn(
                _command(spec, unit.generation, to_child_r, from_child_w),
                pass_fds=(to_child_r, from_child_w),
                env=env,
                stdin=subprocess.DEVNULL,
            )
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
        os.set_blocking(to_child_w, False)
        os.set_blocking(from_child_r, False)
        self.pid = self.ref.pid
        self.read_fd = from_child_r
        self.writer = protocol.FrameWriter(to_child_w)
        self.reader = protocol.FrameReader()
        self.outstanding: collections.deque[int] = collections.deque()
        self.head_started_at = time.monotonic()
        self.started_at = time.monotonic()
        self.ready = False
        self.fingerprint = ""
        self.limits: dict[str, TaskLimits] = {}
        self.dispatched = 0
        self.done = 0
        self.stopping = False
        self.exited = False
        self.average_task_s = 1.0
        self.yield_asked = False
        self.known_leftovers: set[int] = set()
        self.finished_tasks: list[tuple[str, str]] = []
        self.finished_tasks_since = 0.0
        self.leftovers_checked_at = 0.0

    def __repr__(self) -> str:
        return f"<pool pid={self.pid} gen={self.generation} holding={len(self.outstanding)}>"

    @property
    def running(self) -> int | None:
        """The sequence number of the task running now, if any."""
        return self.outstanding[0] if self.outstanding else None

    def accept_hello(self, frame: tuple[Any, ...]) -> None:
        """Record what the pool process reported at start."""
        _, _pid, _generation, fingerprint, limits = frame
        self.fingerprint = fingerprint
        self.limits = {name: TaskLimits(*values) for name, values in limits.items()}
        self.ready = True

    def dispatch(self, seq: int, task_id: str, body: bytes, attempts: int) -> None:
        """Hand a task to the pool process."""
        if not self.outstanding:
            self.head_started_at = time.monotonic()
        self.outstanding.append(seq)
        self.dispatched += 1
        self.writer.write(("run", seq, task_id, body, attempts))

    def finished(self, seq: int) -> None:
        """The pool process reported task ``seq`` done; the next one started."""
        now = time.monotonic()
        if self.outstanding and self.outstanding[0] == seq:
            self.outstanding.popleft()
            self.average_task_s += 0.3 * (now - self.head_started_at - self.average_task_s)
        else:
            self.outstanding.remove(seq)
        self.done += 1
        self.head_started_at = now

    def window(self, now: float, min_window: int, max_window: int) -> int:
        """How many tasks this pool process may hold now."""
        if self.finished_tasks and now - self.finished_tasks_since > LEFTOVER_CHECK_S:
            return 0
        if self.outstanding and now - self.head_started_at > YIELD_AFTER_S:
            return 1
        return max_window if self.average_task_s < FAST_TASK_S else min_window

    def ask_to_yield(self) -> None:
        """Ask the pool process to hand back the tasks queued behind a long one."""
        if not self.yield_asked and not self.stopping:
            self.yield_asked = True
            self.writer.write(("yield",))

    def released(self, seqs: list[int]) -> None:
        """The pool process handed tasks back unstarted."""
        self.yield_asked = False
        for seq in seqs:
            if seq in self.outstanding:
                self.outstanding.remove(seq)

    def stop(self) -> None:
        """Ask the pool process to finish its task, hand back the rest and leave."""
        if not self.stopping:
            self.stopping = True
            self.writer.write(("stop",))

    def retire(self) -> None:
        """Ask the pool process to run what it holds, then leave (max tasks per child)."""
        if not self.stopping:
            self.stopping = True
            self.writer.write(("retire",))

    def close_pipes(self) -> None:
        """Close the main's ends of the pipes."""
        for fd in (self.read_fd, self.writer.fd):
            with contextlib.suppress(OSError):
                os.close(fd)


def _command(spec: PoolSpec, generation: int, read_fd: int, write_fd: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "corral.worker.child",
        "--app",
        spec.app_ref,
        "--read-fd",
        str(read_fd),
        "--write-fd",
        str(write_fd),
        "--parent-pid",
        str(os.getpid()),
        "--generation",
        str(generation),
        "--max-memory-mb",
        str(spec.max_memory_mb),
        "--log-level",
        spec.log_level,
        "--log-format",
        spec.log_format,
    ]
