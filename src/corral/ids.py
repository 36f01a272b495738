"""Task ids: 32 hex digits, the send time in milliseconds then 80 random bits.

Time order keeps the brokers' id indexes growing at their end: with fully random
ids, every message of a bulk send lands on another page of SQLite's id index, and
each page is rewritten to the WAL at commit (a bulk send ran two to three times
slower). Uniqueness is the random part's: 80 bits from ``os.urandom`` make a repeat
within one millisecond practically impossible (under 1 in 10^12 for a million ids
sent in the same millisecond), which is what lets a broker skip the idempotency
checks for these ids (``Envelope.new_id``). A clock set back costs only locality.

``os.urandom`` is a system call: one id per call reads its random bits from a
per-process pool filled 256 ids at a time, emptied in a forked child (which must
never reuse its parent's bits), and ``new_task_ids`` reads once per batch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

__all__ = ["new_task_id", "new_task_ids"]

_RANDOM_BYTES = 10  # 80 bits: 20 hex digits after the 12 of the time
_RANDOM_DIGITS = 2 * _RANDOM_BYTES
_POOL_IDS = 256


class _Pool:
    """Random parts of ids, handed out one at a time, and the current time prefix.

    ``parts`` is an iterator: next() on it is one step under the GIL, so two threads
    never get the same part (a refill race only drops parts no one used).
    """

    def __init__(self) -> None:
        self.parts: Iterator[str] = iter(())
        self.stamp = (-1, "")  # (milliseconds, their 12 hex digits): formatting costs more

    def refill(self) -> None:
        self.parts = iter(_random_parts(_POOL_IDS))

    def empty(self) -> None:
        self.parts = iter(())

    def prefix(self) -> str:
        now_ms = time.time_ns() // 1_000_000
        stamp = self.stamp  # one read: another thread may replace it meanwhile
        if stamp[0] != now_ms:
            stamp = self.stamp = (now_ms, _time_prefix(now_ms))
        return stamp[1]


_POOL = _Pool()
os.register_at_fork(after_in_child=_POOL.empty)


def new_task_id() -> str:
    """A fresh task id."""
    while True:
        random_part = next(_POOL.parts, None)
        if random_part is not None:
            return _POOL.prefix() + random_part
        _POOL.refill()


def new_task_ids(count: int) -> list[str]:
    """``count`` fresh task ids, in one read of random bits."""
    prefix = _time_prefix(time.time_ns() // 1_000_000)
    return [prefix + part for part in _random_parts(count)]


def _time_prefix(ms: int) -> str:
    return f"{ms:012x}"


def _random_parts(count: int) -> list[str]:
    digits = os.urandom(_RANDOM_BYTES * count).hex()
    return [digits[i : i + _RANDOM_DIGITS] for i in range(0, len(digits), _RANDOM_DIGITS)]
