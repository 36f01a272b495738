"""Storing sent messages in the SQLite broker.

An id the caller chose (``task_id``) makes a send idempotent: an id already
pending is ignored, a finished one is forgotten (result, dead letter) and runs
again. Ids the app generated for this send (``Envelope.new_id``) can be known
nowhere, so a batch of only those takes plain INSERTs: were one ever pending,
the UNIQUE index would fail the whole batch rather than drop a message.

A bulk send is bound by its cost per row, most of it in the sqlite3 module
rather than in SQLite itself. So fresh rows go in a hundred per statement (a
multi-row VALUES list; ``executemany`` runs its statement once per row), the
fields a hundred envelopes share (task, queue, priority, limits) are bound once
per statement (numbered parameters), and bodies are bound as ``bytearray``,
which the module binds as it is, where each ``bytes`` parameter goes through its
adapter lookup (an AttributeError built and dropped per row). A VALUES list
inserts its rows in order, so ``seq`` (FIFO) follows the batch.

Every function here runs inside the caller's write transaction.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence
from itertools import chain
from operator import itemgetter

from corral.brokers.base import Envelope

__all__ = ["ROWS_PER_INSERT", "SEND_READY", "store_sent"]

ROWS_PER_INSERT = 100
"""Rows per multi-row INSERT: 100 rows of 9 values stay below the 999 parameters of old
SQLite."""

_MESSAGE = "id, task, queue, priority, body, lease_s, max_deliveries, result_ttl_s"

SEND_READY = (
    f"INSERT INTO messages ({_MESSAGE}) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 "
    "WHERE NOT EXISTS (SELECT 1 FROM scheduled WHERE id = ?1) ON CONFLICT (id) DO NOTHING"
)
"""Store one ready message unless its id is pending (its values in ``_MESSAGE`` order)."""

_SEND_LATER = (
    f"INSERT INTO scheduled ({_MESSAGE}, eta) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 "
    "WHERE NOT EXISTS (SELECT 1 FROM messages WHERE id = ?1) ON CONFLICT (id) DO NOTHING"
)
# A re-sent id replaces its old outcome (and dead letter). A pending id never has either
# (a message gets them only as it leaves), so these deletes cannot hurt a duplicate.
_FORGET_RESULT = "DELETE FROM results WHERE task_id = ?"
_FORGET_DEAD = "DELETE FROM dead_letters WHERE id = ?"

_INSERT_READY = f"INSERT INTO messages ({_MESSAGE}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_LATER = f"INSERT INTO scheduled ({_MESSAGE}, eta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"

# What envelopes of one task share, bound once per statement as ?1 to ?6.
_SHARED = ("task", "queue", "priority", "lease_s", "max_deliveries", "result_ttl_s")
_shared_of = itemgetter(*map(Envelope._fields.index, _SHARED))
_id_of = itemgetter(Envelope._fields.index("id"))
_body_of = itemgetter(Envelope._fields.index("body"))


def _shared_insert() -> str:
    """ROWS_PER_INSERT rows of ``_SHARED`` (?1 to ?6 in each), then an id and a body each."""
    rows = (f"(?1, ?2, ?3, ?4, ?5, ?6, ?{7 + 2 * i}, ?{8 + 2 * i})" for i in range(ROWS_PER_INSERT))
    return f"INSERT INTO messages ({', '.join(_SHARED)}, id, body) VALUES {', '.join(rows)}"


_INSERT_SHARED = _shared_insert()


def store_sent(db: sqlite3.Connection, envelopes: Sequence[Envelope], now: float) -> None:
    """Store a batch: countdowns in ``scheduled`` (due at ``now + delay_s``), the rest ready.

    A batch that mixes generated and caller-chosen ids is checked whole, in order.
    """
    ready = [e for e in envelopes if e.delay_s <= 0]
    later = [e for e in envelopes if e.delay_s > 0]
    scheduled_row = functools.partial(_scheduled_row, now)
    if all(e.new_id for e in envelopes):
        _insert_ready(db, ready)
        _insert_rows(db, _INSERT_LATER, later, scheduled_row)
        return
    ids = [(e.id,) for e in envelopes]
    db.executemany(_FORGET_RESULT, ids)
    db.executemany(_FORGET_DEAD, ids)
    db.executemany(SEND_READY, map(_message_row, ready))
    db.executemany(_SEND_LATER, map(scheduled_row, later))


def _insert_ready(db: sqlite3.Connection, envelopes: Sequence[Envelope]) -> None:
    """Insert ready rows; a full group of envelopes that share ``_SHARED`` binds it once."""
    full = len(envelopes) - len(envelopes) % ROWS_PER_INSERT
    for start in range(0, full, ROWS_PER_INSERT):
        group = envelopes[start : start + ROWS_PER_INSERT]
        shared = set(map(_shared_of, group))
        if len(shared) == 1:
            ids_bodies = zip(map(_id_of, group), map(bytearray, map(_body_of, group)), strict=True)
            db.execute(_INSERT_SHARED, (*shared.pop(), *chain.from_iterable(ids_bodies)))
        else:
            _insert_rows(db, _INSERT_READY, group, _message_row)
    _insert_rows(db, _INSERT_READY, envelopes[full:], _message_row)


def _insert_rows(
    db: sqlite3.Connection,
    insert: str,
    envelopes: Sequence[Envelope],
    row_of: Callable[[Envelope], tuple[object, ...]],
) -> None:
    """Run ``insert`` (one row) for each envelope's row, a hundred rows per statement."""
    full = len(envelopes) - len(envelopes) % ROWS_PER_INSERT
    for start in range(0, full, ROWS_PER_INSERT):
        rows = map(row_of, envelopes[start : start + ROWS_PER_INSERT])
        db.execute(_many_rows(insert), tuple(chain.from_iterable(rows)))
    if full < len(envelopes):
        db.executemany(insert, map(row_of, envelopes[full:]))


@functools.cache
def _many_rows(insert: str) -> str:
    """``insert`` (``INSERT ... VALUES (?, ...)``, one row) for :data:`ROWS_PER_INSERT` rows."""
    values = insert[insert.rindex("(") :]
    return insert + f", {values}" * (ROWS_PER_INSERT - 1)


def _message_row(e: Envelope) -> tuple[str, str, str, int, bytearray, float, int, float]:
    return (e.id, e.task, e.queue, e.priority, bytearray(e.body), e.lease_s, e.max_deliveries,
            e.result_ttl_s)  # fmt: skip


def _scheduled_row(
    now: float, e: Envelope
) -> tuple[str, str, str, int, bytearray, float, int, float, float]:
    return (*_message_row(e), now + e.delay_s)
