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
from collections.abc import Iterator

__all__ = ["FORK_ESCAPE_EXIT_CODE", "ForkGuard"]

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
        self._entered_pid: int | None = None
        self._forked_in: str | None = None

    def install(self) -> ForkGuard:
        """Register the at-fork hook (once per interpreter; guards share it)."""
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
        if self._task is not None:
            self._forked_in = self._task

    @property
    def forked_inside_task(self) -> str | None:
        """In a process forked during a task: that task's name; otherwise None."""
        return self._forked_in

    @contextlib.contextmanager
    def task_scope(self, task_name: str) -> Iterator[None]:
        """Run a task; a forked copy of this process that leaves the scope is ended."""
        self._task, self._entered_pid = task_name, os.getpid()
        try:
            yield
        except BaseException as e:
            self._end_if_escaped(task_name, f"raised {type(e).__name__}: {e}")
            raise
        else:
            self._end_if_escaped(task_name, "returned")
        finally:
            self._task = None

    def _end_if_escaped(self, task_name: str, how: str) -> None:
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


def _flush_everything() -> None:
    for handler in [*log.handlers, *logging.getLogger().handlers]:
        with contextlib.suppress(Exception):
            handler.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
