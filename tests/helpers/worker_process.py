"""A `corral worker` process started by a test: its log file, signals, and a bounded stop."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tests.helpers.procs import children_of, poll_for


class WorkerProcess:
    """One ``corral worker APP`` process (optionally behind a prefix such as
    ``ip netns exec NS``), writing to a log file in ``workdir``."""

    def __init__(
        self,
        workdir: Path,
        env: dict[str, str],
        app_ref: str,
        args: Sequence[str],
        prefix: Sequence[str] = (),
    ) -> None:
        self.log_path = workdir / f"worker-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in wait()
        command = [sys.executable, "-m", "corral.cli.main", "worker", app_ref, *args]
        self.process = subprocess.Popen(
            [*prefix, *command], cwd=workdir, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.pid = self.process.pid

    def log(self) -> str:
        """Everything the worker wrote so far."""
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str, *, timeout_s: float = 20.0) -> bool:
        """Poll the log until it contains ``text``."""
        return poll_for(lambda: text in self.log(), timeout_s=timeout_s, interval_s=0.05)

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the worker main."""
        self.process.send_signal(signum)

    def wait(self, timeout_s: float = 30.0) -> int:
        """Wait for the exit (reaped), close the log; the exit code."""
        code = self.process.wait(timeout=timeout_s)
        self._log.close()
        return code

    def pool_pids(self) -> list[int]:
        """Pool processes: children of the worker main."""
        return children_of(self.pid)

    def wait_pools(self, count: int, timeout_s: float = 20.0) -> list[int]:
        """The pool processes, once there are ``count`` (the list that was seen, not a
        second scan that a pool process starting or leaving could change)."""
        seen: list[int] = []

        def enough() -> bool:
            seen[:] = self.pool_pids()
            return len(seen) >= count

        assert poll_for(enough, timeout_s=timeout_s), self.log()
        return seen

    def stop(self, timeout_s: float = 40.0) -> int:
        """SIGTERM (SIGCONT first, in case a test stopped it), wait; SIGKILL if it hangs."""
        if self.process.poll() is None:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
        try:
            return self.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.wait(10.0)
