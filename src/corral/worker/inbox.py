"""A pool process's inbox: frames from the worker main, read by a thread.

The thread reads while a task runs, so a control frame acts at once: ``stop``
and ``retire`` are seen before the next task starts, and ``yield`` hands the
unstarted tasks back to the main while a long task is still running (so quick
tasks queued behind it go to another pool process instead of waiting).
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Callable
from typing import Any

from corral.worker import protocol

__all__ = ["Inbox"]

Sender = Callable[[tuple[Any, ...]], None]


class Inbox:
    """Run frames in order, and the control flags the main has set."""

    def __init__(self, read_fd: int, send: Sender) -> None:
        self._read_fd = read_fd
        self._send = send
        self._reader = protocol.FrameReader()
        self._cond = threading.Condition()
        self._runs: collections.deque[tuple[Any, ...]] = collections.deque()
        self.stopping = False
        self.retiring = False
        self.gone = False
        self._thread = threading.Thread(target=self._read_loop, name="corral-inbox", daemon=True)

    def start(self) -> None:
        """Start reading."""
        os.set_blocking(self._read_fd, True)
        self._thread.start()

    @property
    def idle(self) -> bool:
        """True when nothing is waiting and no control flag is set."""
        return not (self._runs or self.stopping or self.retiring or self.gone)

    def next(self, *, timeout_s: float) -> tuple[Any, ...] | None:
        """The next task frame to run; None when the process should leave, or when
        ``timeout_s`` passed with nothing to do (then ``idle`` is True)."""
        with self._cond:
            if self.idle:
                self._cond.wait(timeout_s)
            if self.stopping or self.gone or not self._runs:
                return None
            return self._runs.popleft()

    def take_unstarted(self) -> list[int]:
        """Remove and return the sequence numbers of every task not started."""
        with self._cond:
            seqs = [frame[1] for frame in self._runs]
            self._runs.clear()
        return seqs

    def _read_loop(self) -> None:
        while True:
            try:
                data = os.read(self._read_fd, protocol.READ_CHUNK)
            except InterruptedError:
                continue
            except OSError:
                data = b""
            if not data:
                with self._cond:
                    self.gone = True
                    self._cond.notify()
                return
            for frame in self._reader.feed(data):
                self._on_frame(frame)

    def _on_frame(self, frame: tuple[Any, ...]) -> None:
        kind = frame[0]
        if kind == "yield":
            self._send(("released", self.take_unstarted()))
            return
        with self._cond:
            if kind == "run":
                self._runs.append(frame)
            elif kind == "stop":
                self.stopping = True
            elif kind == "retire":
                self.retiring = True
            self._cond.notify()
