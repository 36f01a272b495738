"""The lease lifecycle on SQLite: reserve, extend and settle.

Every function here runs inside the caller's ``BEGIN IMMEDIATE`` transaction,
with ``now`` read once from the broker's clock for the whole transaction.

Tokens fence everything: a lease is identified by ``(id, token)``, the token
changes on every delivery, and a row's token survives an expired lease until
the row is leased again. So a worker whose lease lapsed but whose message no
one took yet may still renew or settle it (no duplicate run), while a worker
whose message went to another worker changes nothing.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable, Sequence

from corral.brokers.base import Delivery, LeaseStatus, Settlement
from corral.brokers.sqlite_records import (
    MESSAGE_COLUMNS,
    REVOKED_TERMINATE,
    MessageRow,
    bury,
    poison_reason,
    store_result,
)
from corral.errors import ConfigError
from corral.results import TaskState

__all__ = ["extend_lease", "promote_due", "reclaim_expired", "reserve_ready", "settle_one"]

_PROMOTE_BATCH = 5_000  # bounds one reserve's work when a large backlog falls due at once

_SELECT_DUE = (
    "SELECT rowid, id, task, queue, priority, body, deliveries, attempts, lease_s, "
    "max_deliveries, result_ttl_s, last_error FROM scheduled WHERE eta <= ? "
    "ORDER BY eta LIMIT ?"
)
_INSERT_MESSAGE = (
    "INSERT INTO messages (id, task, queue, priority, body, deliveries, attempts, lease_s, "
    "max_deliveries, result_ttl_s, last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO NOTHING"
)
_SELECT_READY = (
    f"SELECT seq, {MESSAGE_COLUMNS} FROM messages "
    "WHERE queue = ? AND lease_until IS NULL ORDER BY priority DESC, seq LIMIT ?"
)
_LEASE = (
    "UPDATE messages SET token = ?, lease_until = ?, owner = ?, deliveries = deliveries + 1 "
    "WHERE seq = ?"
)
_DELETE_LEASED = f"DELETE FROM messages WHERE id = ? AND token = ? RETURNING {MESSAGE_COLUMNS}"


def new_token() -> int:
    """A fresh lease token: random, positive (0 means "not leased"), fits in 63 bits.

    ``random`` is reseeded in a forked child, so two workers forked from one
    parent do not hand out the same tokens.
    """
    return random.getrandbits(62) + 1


def promote_due(db: sqlite3.Connection, now: float) -> None:
    """Move scheduled rows whose ETA has passed into ``messages``, earliest first."""
    rows = db.execute(_SELECT_DUE, (now, _PROMOTE_BATCH)).fetchall()
    if not rows:
        return
    db.executemany(_INSERT_MESSAGE, [row[1:] for row in rows])
    db.executemany("DELETE FROM scheduled WHERE rowid = ?", [(row[0],) for row in rows])


def reclaim_expired(db: sqlite3.Connection, now: float) -> None:
    """Make rows whose lease expired ready again (their worker died or hung).

    A row revoked while it ran is finished as REVOKED instead: it must never run
    again. Tokens are kept (see the module docstring).
    """
    expired = db.execute(
        "SELECT seq, revoked FROM messages WHERE lease_until <= ?", (now,)
    ).fetchall()
    if not expired:
        return
    for seq, revoked in expired:
        if revoked:
            row = MessageRow(
                *db.execute(
                    f"DELETE FROM messages WHERE seq = ? RETURNING {MESSAGE_COLUMNS}", (seq,)
                ).fetchone()
            )
            store_result(db, row.id, TaskState.REVOKED, b"", now=now, ttl_s=row.result_ttl_s)
    db.execute("UPDATE messages SET lease_until = NULL WHERE lease_until <= ?", (now,))


def reserve_ready(
    db: sqlite3.Connection, queues: Sequence[str], limit: int, *, owner: str, now: float
) -> list[Delivery]:
    """Lease up to ``limit`` ready rows, priority first then FIFO across ``queues``.

    Rows that would exceed their ``max_deliveries`` go to the dead letters
    instead, so the batch may be shorter than the ready backlog.
    """
    picked: list[tuple[int, MessageRow]] = []
    # One indexed walk per queue: "queue IN (...) ORDER BY" would sort every ready row.
    for queue in dict.fromkeys(queues):
        for seq, *columns in db.execute(_SELECT_READY, (queue, limit)):
            picked.append((seq, MessageRow(*columns)))
    if len(queues) > 1:
        picked.sort(key=lambda item: (-item[1].priority, item[0]))
        del picked[limit:]
    deliveries: list[Delivery] = []
    leases: list[tuple[int, float, str, int]] = []
    for seq, row in picked:
        if row.deliveries >= row.max_deliveries:
            _bury_poison(db, seq, row, now)
            continue
        token = new_token()
        leases.append((token, now + row.lease_s, owner, seq))
        deliveries.append(_delivery(row, token))
    db.executemany(_LEASE, leases)
    return deliveries


def _delivery(row: MessageRow, token: int) -> Delivery:
    return Delivery(
        id=row.id,
        task=row.task,
        queue=row.queue,
        priority=row.priority,
        body=row.body,
        token=token,
        deliveries=row.deliveries + 1,
        attempts=row.attempts,
        lease_s=row.lease_s,
    )


def _bury_poison(db: sqlite3.Connection, seq: int, row: MessageRow, now: float) -> None:
    db.execute("DELETE FROM messages WHERE seq = ?", (seq,))
    reason = poison_reason(row.deliveries)
    bury(db, row, state=TaskState.DEAD, reason=reason, error=row.last_error or b"", now=now)


def extend_lease(db: sqlite3.Connection, task_id: str, token: int, now: float) -> LeaseStatus:
    """Renew one lease by its message's ``lease_s``."""
    if token <= 0:
        return LeaseStatus.LOST
    found = db.execute(
        "UPDATE messages SET lease_until = ? + lease_s WHERE id = ? AND token = ? "
        "RETURNING revoked",
        (now, task_id, token),
    ).fetchone()
    if found is None:
        return LeaseStatus.LOST
    return LeaseStatus.REVOKED if found[0] == REVOKED_TERMINATE else LeaseStatus.HELD


def settle_one(db: sqlite3.Connection, settlement: Settlement, now: float) -> bool:
    """Apply one outcome; False when the token is stale (nothing changes)."""
    apply = _SETTLERS.get(settlement.state)
    if apply is None:
        valid = ", ".join(state.name for state in _SETTLERS)
        raise ConfigError(
            f"settle(): Settlement.state {settlement.state.name} for task {settlement.id} "
            f"is not an outcome; use one of {valid}"
        )
    if settlement.token <= 0:
        return False
    return apply(db, settlement, now)


def _take(db: sqlite3.Connection, settlement: Settlement) -> MessageRow | None:
    found = db.execute(_DELETE_LEASED, (settlement.id, settlement.token)).fetchone()
    return None if found is None else MessageRow(*found)


def _settle_final(db: sqlite3.Connection, settlement: Settlement, now: float) -> bool:
    row = _take(db, settlement)
    if row is None:
        return False
    store_result(db, row.id, settlement.state, settlement.payload, now=now, ttl_s=row.result_ttl_s)
    return True


def _settle_dead(db: sqlite3.Connection, settlement: Settlement, now: float) -> bool:
    row = _take(db, settlement)
    if row is None:
        return False
    reason = settlement.reason or f"task {row.task} ended {settlement.state.name}"
    bury(db, row, state=settlement.state, reason=reason, error=settlement.payload, now=now)
    return True


def _settle_retry(db: sqlite3.Connection, settlement: Settlement, now: float) -> bool:
    row = _take(db, settlement)
    if row is None:
        return False
    if row.revoked:
        store_result(db, row.id, TaskState.REVOKED, b"", now=now, ttl_s=row.result_ttl_s)
        return True
    # deliveries restarts: max_deliveries counts deaths of one attempt, and a retry is
    # a finished attempt, so ten retries must not look like a poison message.
    db.execute(
        "INSERT INTO scheduled (id, task, queue, priority, body, eta, deliveries, attempts, "
        "lease_s, max_deliveries, result_ttl_s, last_error) "
        "VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
        (
            row.id, row.task, row.queue, row.priority, row.body,
            now + max(settlement.delay_s, 0.0), row.attempts + 1, row.lease_s,
            row.max_deliveries, row.result_ttl_s, settlement.payload,
        ),
    )  # fmt: skip
    return True


def _settle_requeue(db: sqlite3.Connection, settlement: Settlement, now: float) -> bool:
    # Handed back: ready at once, in its old place (seq is kept). A graceful stop's
    # delivery does not count against max_deliveries; a crash's does, so a message that
    # kills every worker that runs it still ends in the dead letters.
    uncount = 0 if settlement.crashed else 1
    handed_back = db.execute(
        "UPDATE messages SET lease_until = NULL, token = 0, owner = NULL, "
        "deliveries = max(deliveries - ?, 0) WHERE id = ? AND token = ? AND revoked = 0",
        (uncount, settlement.id, settlement.token),
    ).rowcount
    if handed_back:
        return True
    return _settle_retry(db, settlement, now)  # revoked (or stale): never hand it back


_SETTLERS: dict[TaskState, Callable[[sqlite3.Connection, Settlement, float], bool]] = {
    TaskState.SUCCEEDED: _settle_final,
    TaskState.REVOKED: _settle_final,
    TaskState.FAILED: _settle_dead,
    TaskState.DEAD: _settle_dead,
    TaskState.RETRYING: _settle_retry,
    TaskState.QUEUED: _settle_requeue,
}
