"""ForkGuard: a process forked inside a task never unwinds into the worker loop (P5).

Seed 000: a task double-forks; the grandchild raises; the exception unwinds through
the copied stack into the worker's ``while True`` loop, and the grandchild becomes a
second, unsupervised worker. The guard marks every process forked while a task runs
(``os.register_at_fork``), and ``task_scope`` ends such a process with ``os._exit``
when it reaches the end of the scope, by return or by raise, so it can never get
past the task runner.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from types import TracebackType

__all__ = ["FORK_ESCAPE_EXIT_CODE", "ForkGuard", "TaskScope"]

FORK_ESCAPE_EXIT_CODE = 70  # EX_SOFTWARE: an internal error, not the task's result

log = logging.getLogger("corral.process.forkguard")

_hook = {"registered": False}
_guards: list[ForkGuard] = []
_guards_lock = threading.Lock()


def _after_fork_in_child() -> None:
    for guard in list(_guards):
        guard._mark_forked()


class ForkGuard:
    """Marks processes forked inside a task and ends them at the task scope's exit."""

    def __init__(self, *, enabled: bool = True, exit_code: int = FORK_ESCAPE_EXIT_CODE):
        self.enabled = enabled
        self._exit_code = exit_code
        self._task: str | None = None
        self._pid = os.getpid()  # kept current by the at-fork hook
        self._entered_pid: int | None = None
        self._forked_in: str | None = None

    def install(self) -> ForkGuard:
        """Register the at-fork hook (once per interpreter; guards share it)."""
        self._pid = os.getpid()  # made before a fork the hook did not yet see, perhaps
        with _guards_lock:
            if not _hook["registered"]:
                os.register_at_fork(after_in_child=_after_fork_in_child)
                _hook["registered"] = True
            if self not in _guards:
                _guards.append(self)
        return self

    def uninstall(self) -> None:
        """Stop marking forks for this guard."""
        with _guards_lock, contextlib.suppress(ValueError):
            _guards.remove(self)

    def _mark_forked(self) -> None:
        self._pid = os.getpid()
        if self._task is not None:
            self._forked_in = self._task

    @property
    def forked_inside_task(self) -> str | None:
        """In a process forked during a task: that task's name; otherwise None."""
        return self._forked_in

    def task_scope(self, task_name: str) -> TaskScope:
        """Run a task; a forked copy of this process that leaves the scope is ended."""
        return TaskScope(self, task_name)

    def _enter(self, task_name: str) -> None:
        self._task, self._entered_pid = task_name, self._pid

    def _leave(self, task_name: str, error: BaseException | None) -> None:
        self._task = None
        how = "returned" if error is None else f"raised {type(error).__name__}: {error}"
        self._end_if_escaped(task_name, how)

    def _end_if_escaped(self, task_name: str, how: str) -> None:
        # One getpid per task: a fork the hook did not see (a C library's) still shows.
        escaped = self._forked_in is not None or os.getpid() != self._entered_pid
        if not (self.enabled and escaped):
            return
        # This process is a copy of the worker made by fork inside the task: letting it
        # continue would run the worker loop twice (seeds/000). End it here.
        log.error(
            "a process forked inside task %s %s into corral's task runner "
            "(pid %d, parent %d); ended with os._exit(%d)",
            task_name,
            how,
            os.getpid(),
            os.getppid(),
            self._exit_code,
        )
        _flush_everything()
        os._exit(self._exit_code)


class TaskScope:
    """The context of one task under a ForkGuard (a class, not a generator: it runs
    around every task, and a generator-based context manager cost several times more)."""

    __slots__ = ("_guard", "_task_name")

    def __init__(self, guard: ForkGuard, task_name: str) -> None:
        self._guard = guard
        self._task_name = task_name

    def __enter__(self) -> None:
        self._guard._enter(self._task_name)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._guard._leave(self._task_name, error)


def _flush_everything() -> None:
    for handler in [*log.handlers, *logging.getLogger().handlers]:
        with contextlib.suppress(Exception):
            handler.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
