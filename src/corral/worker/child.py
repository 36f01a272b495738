"""The pool process: a fresh interpreter that imports the app and runs tasks it is handed.

Started by the worker main as ``python -m corral.worker.child`` (never forked
from it), so every pool process imports the code as it is on disk now: a HUP
reload really runs new code (seeds/002: old workers kept sending SMS with the
old template for days). It talks to the main over two pipes (see protocol.py)
and never to the broker.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

from corral.app import Corral
from corral.exitcodes import ExitCode
from corral.loader import load_app
from corral.process import Reaper
from corral.worker import protocol
from corral.worker.execution import FORK_GUARD, execute, raise_soft_time_limit
from corral.worker.fingerprint import code_fingerprint
from corral.worker.inbox import Inbox
from corral.worker.logs import setup_logging
from corral.worker.parent import exit_with_parent, rss_bytes

__all__ = ["UNSAFE_NO_FORK_GUARD", "main"]

IDLE_REAP_S = 1.0
UNSAFE_NO_FORK_GUARD = "CORRAL_UNSAFE_NO_FORK_GUARD"
"""Set to 1 to turn the fork guard off: only for the test that shows the bug it prevents."""

log = logging.getLogger("corral.worker")


class PoolProcess:
    """The loop of one pool process."""

    def __init__(self, app: Corral, args: argparse.Namespace) -> None:
        self.app = app
        self.write_fd = args.write_fd
        self.max_memory_bytes = args.max_memory_mb * 1024 * 1024
        self._write_lock = threading.Lock()
        self.inbox = Inbox(args.read_fd, self.send)
        # Children a task started and did not wait for become zombies of this process
        # once they exit (or the main kills them as leftovers): reap them between
        # tasks, without stealing statuses from the task's own Popen objects.
        self.reaper = Reaper(reap_orphans=True).install()
        self.reaper.install_sigchld()
        # SA_RESTART: a task's blocking calls must not fail with EINTR when a child
        # of its exits (SIGCHLD was ignored before this handler existed).
        signal.siginterrupt(signal.SIGCHLD, False)

    def send(self, frame: tuple[Any, ...]) -> None:
        """Write one frame (from the task loop or the inbox thread)."""
        view = memoryview(protocol.pack(frame))
        with self._write_lock:
            while view:
                written = os.write(self.write_fd, view)
                view = view[written:]

    def run(self) -> int:
        """Run tasks until told to stop, retired, or the main is gone."""
        self.inbox.start()
        while True:
            frame = self.inbox.next(timeout_s=IDLE_REAP_S)
            self.reaper.reap_if_due(every_s=IDLE_REAP_S)
            if frame is None:
                if self.inbox.idle:
                    continue
                return self._leave_as_told()
            self._run_task(frame)
            if self.max_memory_bytes and rss_bytes() > self.max_memory_bytes:
                return self._leave(ExitCode.RETIRED, "max memory per child reached")

    def _run_task(self, frame: tuple[Any, ...]) -> None:
        _, seq, task_id, body, attempts = frame
        outcome = execute(self.app, task_id, body, attempts)
        self.send(("done", seq, outcome.kind, outcome.payload, outcome.delay_s, outcome.reason))

    def _leave_as_told(self) -> int:
        if self.inbox.gone:
            return ExitCode.PARENT_GONE
        if self.inbox.stopping:
            return self._leave(ExitCode.OK, "stopped")
        return self._leave(ExitCode.RETIRED, "max tasks per child reached")

    def _leave(self, code: int, reason: str) -> int:
        self.send(("released", self.inbox.take_unstarted()))
        self.send(("bye", int(code), reason))
        return code


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="corral-pool", description=__doc__)
    parser.add_argument("--app", required=True)
    parser.add_argument("--read-fd", type=int, required=True)
    parser.add_argument("--write-fd", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--generation", type=int, default=1)
    parser.add_argument("--max-memory-mb", type=int, default=0)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-format", default="text")
    return parser.parse_args(argv)


def _ignore_group_signals() -> None:
    # A terminal's ^C, a HUP or QUIT, and a TERM sent to the whole process group
    # (timeout(1), systemd's KillMode=control-group) reach pool processes too; the
    # worker main decides what they mean and tells its pool processes over the
    # pipe. A do-nothing handler rather than SIG_IGN: ignored dispositions are
    # inherited across exec, and a task's own children must still die on TERM.
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM):
        signal.signal(signum, _leave_to_main)
    signal.signal(signal.SIGALRM, raise_soft_time_limit)


def _leave_to_main(signum: int, frame: FrameType | None) -> None:
    """Group signals are the worker main's to act on."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m corral.worker.child``."""
    args = parse_args(argv)
    exit_with_parent(args.parent_pid)
    _ignore_group_signals()
    setup_logging(args.log_level, args.log_format, role=f"pool-{os.getpid()}")
    app = load_app(args.app)
    FORK_GUARD.enabled = os.environ.get(UNSAFE_NO_FORK_GUARD) != "1"
    FORK_GUARD.install()
    pool = PoolProcess(app, args)
    limits = {name: _limits(task.options) for name, task in app.tasks.items()}
    fingerprint = code_fingerprint(args.app.partition(":")[0])
    pool.send(("hello", os.getpid(), args.generation, fingerprint, limits))
    return pool.run()


def _limits(options: Any) -> tuple[Any, ...]:
    """What the main needs to enforce a hard limit and retry a killed task."""
    from corral.errors import TimeLimitExceeded

    retry_on_timeout = any(issubclass(TimeLimitExceeded, kind) for kind in options.retry_on)
    return (
        options.timeout_s or 0.0,
        options.retries,
        options.retry_backoff_s,
        options.retry_backoff_max_s,
        options.retry_jitter,
        retry_on_timeout,
        options.leftovers,
    )


if __name__ == "__main__":
    sys.exit(main())
