"""Rows of the SQLite broker: the message row and the writes that end a message.

Every function here runs inside a transaction the caller opened.
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

from corral.results import TaskState

__all__ = [
    "MESSAGE_COLUMNS",
    "REVOKED_NO_RETRY",
    "REVOKED_TERMINATE",
    "MessageRow",
    "bury",
    "poison_reason",
    "store_result",
]

# Values of messages.revoked for a row revoked while leased (0: not revoked).
REVOKED_NO_RETRY = 1  # let it finish, but never retry it or hand it back
REVOKED_TERMINATE = 2  # its lease reports LeaseStatus.REVOKED: the worker kills it

MESSAGE_COLUMNS = (
    "id, task, queue, priority, body, deliveries, attempts, lease_s, "
    "max_deliveries, result_ttl_s, revoked, last_error"
)


class MessageRow(NamedTuple):
    """A ``messages`` row as the broker reads it (``MESSAGE_COLUMNS``, in order)."""

    id: str
    task: str
    queue: str
    priority: int
    body: bytes
    deliveries: int
    attempts: int
    lease_s: float
    max_deliveries: int
    result_ttl_s: float
    revoked: int
    last_error: bytes | None


_STORE_RESULT = (
    "INSERT OR REPLACE INTO results (task_id, state, payload, finished_at, expires_at) "
    "VALUES (?, ?, ?, ?, ?)"
)

_BURY = (
    "INSERT OR REPLACE INTO dead_letters (id, task, queue, priority, body, state, reason, "
    "error, deliveries, attempts, lease_s, max_deliveries, result_ttl_s, died_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def store_result(
    db: sqlite3.Connection,
    task_id: str,
    state: TaskState,
    payload: bytes,
    *,
    now: float,
    ttl_s: float,
) -> None:
    """Record a task's outcome, replacing an older one; it expires ``ttl_s`` from ``now``."""
    db.execute(_STORE_RESULT, (task_id, state.value, payload, now, now + ttl_s))


def bury(
    db: sqlite3.Connection,
    row: MessageRow,
    *,
    state: TaskState,
    reason: str,
    error: bytes,
    now: float,
) -> None:
    """Move a message (already deleted from its table) to the dead letters.

    The outcome is stored as well, so a client waiting for the result is
    answered instead of waiting forever.
    """
    db.execute(
        _BURY,
        (
            row.id, row.task, row.queue, row.priority, row.body, state.value, reason,
            error, row.deliveries, row.attempts, row.lease_s, row.max_deliveries,
            row.result_ttl_s, now,
        ),
    )  # fmt: skip
    store_result(db, row.id, state, error, now=now, ttl_s=row.result_ttl_s)


def poison_reason(deliveries: int) -> str:
    """Why a message that keeps killing its workers went to the dead letters."""
    return (
        f"delivered {deliveries} times without finishing: the worker running it died "
        "each time (poison message?)"
    )
