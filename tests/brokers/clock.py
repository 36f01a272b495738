"""A clock that tests move by hand, so lease, retry, ETA and TTL logic runs without waiting."""

from __future__ import annotations

import threading
import time


class FakeClock:
    """Callable like ``time.time``; time passes only through :meth:`advance`.

    It starts at the real time, so processes on the real clock that share a
    broker with it (the multi-process tests) see consistent deadlines.
    """

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        with self._lock:
            self._now += seconds
