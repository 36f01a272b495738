"""ExitStatus: how a process ended, named the way P8 asks (128+N for signal N)."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

__all__ = ["ExitStatus"]

SIGNAL_EXIT_BASE = 128


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """The end of one process: either an exit code or the signal that killed it."""

    pid: int
    exitcode: int | None = None
    signal: int | None = None
    core_dumped: bool = False

    @classmethod
    def from_wait_status(cls, pid: int, status: int) -> ExitStatus:
        """Build from the ``status`` word of ``os.waitpid``."""
        if os.WIFSIGNALED(status):
            return cls(pid, signal=os.WTERMSIG(status), core_dumped=os.WCOREDUMP(status))
        return cls(pid, exitcode=os.waitstatus_to_exitcode(status))

    @classmethod
    def from_returncode(cls, pid: int, returncode: int) -> ExitStatus:
        """Build from ``subprocess.Popen.returncode`` (negative N means killed by signal N)."""
        if returncode < 0:
            return cls(pid, signal=-returncode)
        return cls(pid, exitcode=returncode)

    @property
    def killed(self) -> bool:
        """True if a signal ended the process."""
        return self.signal is not None

    @property
    def code(self) -> int:
        """The shell's view: the exit code 0-255, or 128+N when killed by signal N."""
        if self.signal is not None:
            return SIGNAL_EXIT_BASE + self.signal
        return self.exitcode if self.exitcode is not None else 0

    def describe(self) -> str:
        """A phrase for logs: ``exited 3`` or ``killed by SIGKILL (137)``."""
        if self.signal is None:
            return f"exited {self.code}"
        try:
            name = signal.Signals(self.signal).name
        except ValueError:
            name = f"signal {self.signal}"
        core = ", core dumped" if self.core_dumped else ""
        return f"killed by {name} ({self.code}{core})"
