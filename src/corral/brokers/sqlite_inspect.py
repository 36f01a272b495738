"""Read-only questions to the SQLite broker file: task states, counts, listings.

Every function here runs on a connection the caller holds, inside one read
transaction where several SELECTs must agree.
"""

from __future__ import annotations

import json
import sqlite3

from corral.brokers.base import DeadLetter, QueueStats, WorkerInfo
from corral.results import TaskState

__all__ = ["dead_letter_list", "has_result", "queue_counts", "task_state", "worker_list"]

# Each query fills the [ready, scheduled, running, dead] counts from the given index on;
# the messages query runs first and writes a 0 for "scheduled" that the next one fills.
_COUNT_QUERIES = (
    (
        "SELECT queue, sum(lease_until IS NULL), 0, sum(lease_until IS NOT NULL) "
        "FROM messages GROUP BY queue",
        0,
    ),
    ("SELECT queue, count(*) FROM scheduled GROUP BY queue", 1),
    ("SELECT queue, count(*) FROM dead_letters GROUP BY queue", 3),
)


def has_result(db: sqlite3.Connection, task_id: str, now: float) -> bool:
    """True when the task has an unexpired outcome."""
    found = db.execute(
        "SELECT 1 FROM results WHERE task_id = ? AND expires_at > ?", (task_id, now)
    ).fetchone()
    return found is not None


def task_state(db: sqlite3.Connection, task_id: str, now: float) -> TaskState | None:
    """The task's unexpired outcome, else where its row is; None if unknown."""
    found = db.execute(
        "SELECT state FROM results WHERE task_id = ? AND expires_at > ?", (task_id, now)
    ).fetchone()
    if found is not None:
        return TaskState(found[0])
    found = db.execute("SELECT lease_until FROM messages WHERE id = ?", (task_id,)).fetchone()
    if found is not None:
        return TaskState.QUEUED if found[0] is None else TaskState.RUNNING
    found = db.execute("SELECT attempts FROM scheduled WHERE id = ?", (task_id,)).fetchone()
    if found is not None:
        return TaskState.RETRYING if found[0] else TaskState.SCHEDULED
    found = db.execute("SELECT state FROM dead_letters WHERE id = ?", (task_id,)).fetchone()
    return None if found is None else TaskState(found[0])


def queue_counts(db: sqlite3.Connection) -> list[QueueStats]:
    """Ready, scheduled, running and dead counts per queue, sorted by name."""
    counts: dict[str, list[int]] = {}
    for query, first in _COUNT_QUERIES:
        for queue, *numbers in db.execute(query):
            counts.setdefault(queue, [0, 0, 0, 0])[first : first + len(numbers)] = numbers
    return [QueueStats(queue, *numbers) for queue, numbers in sorted(counts.items())]


def dead_letter_list(db: sqlite3.Connection, limit: int) -> list[DeadLetter]:
    """The newest ``limit`` dead letters first."""
    rows = db.execute(
        "SELECT id, task, queue, reason, error, attempts, deliveries, died_at, body "
        "FROM dead_letters ORDER BY seq DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [DeadLetter(*row) for row in rows]


def worker_list(db: sqlite3.Connection) -> list[WorkerInfo]:
    """Every registered worker, by id."""
    rows = db.execute(
        "SELECT id, host, pid, queues, concurrency, started_at, heartbeat_at, tasks_done, "
        "details FROM workers ORDER BY id"
    ).fetchall()
    return [WorkerInfo(r[0], r[1], r[2], tuple(json.loads(r[3])), *r[4:]) for r in rows]
