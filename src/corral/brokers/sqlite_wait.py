"""Waiting for another process's commit without hammering the database.

SQLite has no notifications across processes. ``PRAGMA data_version`` changes
whenever another connection commits to the file and costs no disk I/O, so the
waiter polls it, sleeping a little longer each time: a result committed soon
after the wait began is seen within about a millisecond, a long idle wait
costs some fifty cheap pragmas a second.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

__all__ = ["ChangeWaiter"]

_FIRST_SLEEP_S = 0.0005
_MAX_SLEEP_S = 0.02
_FAST_PHASE_S = 0.02  # keep the shortest sleep this long: most results come fast
_GROWTH = 1.25


class ChangeWaiter:
    """Sleeps until another connection commits, a condition holds, or a deadline.

    The baseline version is read when the waiter is made, so a caller that
    makes it *before* checking the database cannot miss a commit that lands
    between its check and its wait.
    """

    def __init__(self, db: sqlite3.Connection, timeout_s: float | None) -> None:
        self._db = db
        self._start = time.monotonic()
        self._deadline = None if timeout_s is None else self._start + timeout_s
        self._sleep_s = _FIRST_SLEEP_S
        self._version = self._data_version()

    def wait(self, *, until: Callable[[], bool] | None = None) -> bool:
        """True when the database changed or ``until()`` became true; False at the deadline."""
        while True:
            if until is not None and until():
                return True
            remaining_s = self._remaining_s()
            if remaining_s <= 0:
                return False
            time.sleep(min(self._next_sleep_s(), remaining_s))
            version = self._data_version()
            if version != self._version:
                self._version = version
                return True

    def _remaining_s(self) -> float:
        if self._deadline is None:
            return _MAX_SLEEP_S
        return self._deadline - time.monotonic()

    def _next_sleep_s(self) -> float:
        sleep_s = self._sleep_s
        if time.monotonic() - self._start > _FAST_PHASE_S:
            self._sleep_s = min(self._sleep_s * _GROWTH, _MAX_SLEEP_S)
        return sleep_s

    def _data_version(self) -> int:
        version: int = self._db.execute("PRAGMA data_version").fetchone()[0]
        return version
