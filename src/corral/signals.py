"""Signal handling for corral's main loops (worker, supervisor): handlers only record.

A handler appends the signal number to a list and the interpreter writes a byte
to a wake-up pipe (``signal.set_wakeup_fd``), so the main loop's ``select``
returns at once and reads what was recorded.
"""

from __future__ import annotations

import os
import signal
from types import FrameType

__all__ = ["SignalRecorder"]

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP)
"""SIGCHLD is not here: the process's one Reaper owns it (corral.process)."""


class SignalRecorder:
    """Records signals for the main loop; ``fd`` becomes readable when one arrives."""

    def __init__(self, signals: tuple[int, ...] = HANDLED) -> None:
        self._signals = signals
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._received: list[int] = []
        self._previous_wakeup = -1

    @property
    def fd(self) -> int:
        """Readable when a signal arrived."""
        return self._read_fd

    def install(self) -> None:
        """Install the recording handlers (main thread only)."""
        self._previous_wakeup = signal.set_wakeup_fd(self._write_fd)
        for signum in self._signals:
            signal.signal(signum, self._record)

    def uninstall(self) -> None:
        """Restore default handlers and the previous wake-up fd."""
        for signum in self._signals:
            signal.signal(signum, signal.SIG_DFL)
        signal.set_wakeup_fd(self._previous_wakeup)

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self._received.append(signum)

    def take(self, *, drain: bool = True) -> list[int]:
        """The signals received since the last call, in order.

        ``drain=False`` skips emptying the wake-up pipe: for a loop whose ``select``
        did not report :attr:`fd` readable (a read there would only fail, once per
        iteration). Recorded signals are returned either way.
        """
        if drain:
            try:
                while os.read(self._read_fd, 512):
                    pass
            except BlockingIOError:
                pass
        received, self._received = self._received, []
        return received
