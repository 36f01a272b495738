"""The embedded default broker: one SQLite file, shared by the processes of one machine.

The file is in WAL mode, so readers never block the writer; every write is one
``BEGIN IMMEDIATE`` transaction, so two processes never both decide to lease
the same row. Lease deadlines, ETAs and result expiries come from this
broker's clock (``clock``, ``time.time`` unless a test injects one).

A connection is never used across ``fork``: the broker remembers which
process opened it and opens a new one when ``os.getpid()`` changes.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from corral.brokers.base import (
    Broker,
    DeadLetter,
    Delivery,
    Envelope,
    LeaseStatus,
    QueueStats,
    ResultRecord,
    Settlement,
    WorkerInfo,
)
from corral.brokers.sqlite_connection import SqliteConnection
from corral.brokers.sqlite_inspect import (
    dead_letter_list,
    has_result,
    queue_counts,
    task_state,
    worker_list,
)
from corral.brokers.sqlite_lease import (
    extend_lease,
    promote_due,
    reclaim_expired,
    reserve_ready,
    settle_one,
)
from corral.brokers.sqlite_records import REVOKED_NO_RETRY, REVOKED_TERMINATE, store_result
from corral.brokers.sqlite_send import SEND_READY, store_sent
from corral.brokers.sqlite_wait import ChangeWaiter
from corral.errors import ConfigError
from corral.results import TaskState

__all__ = ["SqliteBroker"]


class SqliteBroker(Broker):
    """A broker in one SQLite file (``path``), safe for several processes of one machine.

    ``busy_timeout_s`` bounds how long an operation waits for another process's
    write transaction before raising :class:`~corral.errors.BrokerUnavailable`.
    ``cleanup()`` forgets workers whose last heartbeat is older than ``worker_expiry_s``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout_s: float = 5.0,
        worker_expiry_s: float = 300.0,
    ) -> None:
        self.path = Path(os.path.abspath(path))
        self.worker_expiry_s = worker_expiry_s
        if not self.path.parent.is_dir():
            raise ConfigError(
                f"SqliteBroker: path {str(path)!r} is in a directory that does not exist "
                f"({self.path.parent}); create the directory or choose another path"
            )
        if busy_timeout_s <= 0:
            raise ConfigError(
                f"SqliteBroker: busy_timeout_s must be positive, got {busy_timeout_s!r}"
            )
        self.url = f"sqlite:///{self.path}"
        self.busy_timeout_s = busy_timeout_s
        self._clock = clock
        self._conn = SqliteConnection(self.path, busy_timeout_s=busy_timeout_s)
        self._conn.db()  # create the file and schema now, so a bad file fails here

    def __repr__(self) -> str:
        return f"SqliteBroker({str(self.path)!r})"

    # -- time -----------------------------------------------------------------
    def now(self) -> float:
        """The broker's clock (``clock`` given at construction)."""
        return self._clock()

    # -- producing ------------------------------------------------------------
    def send(self, envelopes: Sequence[Envelope]) -> None:
        """Store messages in one transaction; a pending id is ignored, a finished one rerun.

        A batch of ids generated for this send (``new_id``) skips those checks. A
        batch that mixes both kinds takes the checks for all, keeping its order.
        """
        if not envelopes:
            return
        with self._conn.write() as db:
            store_sent(db, envelopes, self.now())

    def revoke(self, task_id: str, *, terminate: bool = False) -> bool:
        """Remove a pending task (REVOKED result) or flag a running one; False if final/unknown.

        A running task is flagged so it is never retried or handed back; with
        ``terminate`` its lease also reports :attr:`LeaseStatus.REVOKED`.
        """
        flag = REVOKED_TERMINATE if terminate else REVOKED_NO_RETRY
        with self._conn.write() as db:
            now = self.now()
            if has_result(db, task_id, now):
                return False
            flagged = db.execute(
                "UPDATE messages SET revoked = max(revoked, ?) "
                "WHERE id = ? AND lease_until IS NOT NULL",
                (flag, task_id),
            ).rowcount
            if flagged:
                return True
            for table in ("messages", "scheduled"):
                found = db.execute(
                    f"DELETE FROM {table} WHERE id = ? RETURNING result_ttl_s", (task_id,)
                ).fetchone()
                if found is not None:
                    store_result(db, task_id, TaskState.REVOKED, b"", now=now, ttl_s=found[0])
                    return True
            return False

    # -- consuming ------------------------------------------------------------
    def reserve(self, queues: Sequence[str], limit: int, *, owner: str) -> list[Delivery]:
        """Lease up to ``limit`` messages (priority first, FIFO) in one write transaction."""
        if limit <= 0 or not queues:
            return []
        with self._conn.write() as db:
            # Read under the write lock: deadlines come from the one writer's clock, never
            # from a moment taken before waiting for the lock.
            now = self.now()
            promote_due(db, now)
            reclaim_expired(db, now)
            return reserve_ready(db, queues, limit, owner=owner, now=now)

    def wait_ready(self, queues: Sequence[str], timeout_s: float) -> None:
        """Block until a message may be deliverable, polling ``PRAGMA data_version``."""
        with self._conn.errors():
            waiter = ChangeWaiter(self._conn.db(), timeout_s)
        while True:
            due = self._earliest_due(queues)
            if due is not None and due <= self.now():
                return
            until = None if due is None else functools.partial(self._is_past, due)
            with self._conn.errors():
                if not waiter.wait(until=until):
                    return

    def _is_past(self, moment: float) -> bool:
        return self.now() >= moment

    def _earliest_due(self, queues: Sequence[str]) -> float | None:
        """When something in ``queues`` becomes deliverable (-inf: now), None if never."""
        marks = ", ".join("?" for _ in queues)
        with self._conn.read() as db:
            for queue in queues:
                if db.execute(
                    "SELECT 1 FROM messages WHERE queue = ? AND lease_until IS NULL LIMIT 1",
                    (queue,),
                ).fetchone():
                    return float("-inf")
            times = [
                db.execute(
                    f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL "
                    f"AND queue IN ({marks}) ORDER BY {column} LIMIT 1",
                    tuple(queues),
                ).fetchone()
                for table, column in (("scheduled", "eta"), ("messages", "lease_until"))
            ]
        found = [row[0] for row in times if row is not None]
        return min(found) if found else None

    def extend(self, leases: Sequence[tuple[str, int]]) -> list[LeaseStatus]:
        """Renew leases by their messages' ``lease_s``, in one transaction."""
        if not leases:
            return []
        with self._conn.write() as db:
            now = self.now()
            return [extend_lease(db, task_id, token, now) for task_id, token in leases]

    def settle(self, settlements: Sequence[Settlement]) -> list[bool]:
        """Apply outcomes in one transaction; False where the token was stale."""
        if not settlements:
            return []
        with self._conn.write() as db:
            now = self.now()
            return [settle_one(db, settlement, now) for settlement in settlements]

    # -- results --------------------------------------------------------------
    def get_result(self, task_id: str) -> ResultRecord | None:
        """The stored, unexpired outcome, or None."""
        with self._conn.errors():
            found = (
                self._conn.db()
                .execute(
                    "SELECT state, payload, finished_at FROM results "
                    "WHERE task_id = ? AND expires_at > ?",
                    (task_id, self.now()),
                )
                .fetchone()
            )
        if found is None:
            return None
        return ResultRecord(task_id, TaskState(found[0]), found[1], found[2])

    def wait_result(self, task_id: str, timeout_s: float | None) -> ResultRecord | None:
        """Block until the task has an outcome, polling ``PRAGMA data_version``."""
        with self._conn.errors():
            waiter = ChangeWaiter(self._conn.db(), timeout_s)
        while True:
            record = self.get_result(task_id)
            if record is not None:
                return record
            with self._conn.errors():
                if not waiter.wait():
                    return None

    def state(self, task_id: str) -> TaskState | None:
        """Where the task is: its result, else its row (leased, scheduled, ready, dead)."""
        with self._conn.read() as db:
            return task_state(db, task_id, self.now())

    # -- registry -------------------------------------------------------------
    def register_worker(self, info: WorkerInfo) -> None:
        """Add or replace a worker's entry; its heartbeat is now."""
        with self._conn.write() as db:
            db.execute(
                "INSERT OR REPLACE INTO workers (id, host, pid, queues, concurrency, "
                "started_at, heartbeat_at, tasks_done, details) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    info.id, info.host, info.pid, json.dumps(list(info.queues)),
                    info.concurrency, info.started_at, self.now(), info.tasks_done,
                    info.details,
                ),
            )  # fmt: skip

    def heartbeat(self, worker_id: str, *, tasks_done: int, details: str = "{}") -> None:
        """Refresh a registered worker's heartbeat and counters (unknown ids: no effect)."""
        with self._conn.write() as db:
            db.execute(
                "UPDATE workers SET heartbeat_at = ?, tasks_done = ?, details = ? WHERE id = ?",
                (self.now(), tasks_done, details, worker_id),
            )

    def unregister_worker(self, worker_id: str) -> None:
        """Remove a worker's entry."""
        with self._conn.write() as db:
            db.execute("DELETE FROM workers WHERE id = ?", (worker_id,))

    def workers(self) -> list[WorkerInfo]:
        """Every registered worker, by id."""
        with self._conn.read() as db:
            return worker_list(db)

    # -- inspection and maintenance --------------------------------------------
    def queue_stats(self) -> list[QueueStats]:
        """Ready, scheduled, running and dead counts per queue, sorted by name."""
        with self._conn.read() as db:
            return queue_counts(db)

    def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        """The newest dead letters first."""
        with self._conn.read() as db:
            return dead_letter_list(db, limit)

    def requeue_dead(self, task_id: str) -> bool:
        """Move a dead letter back to its queue with fresh counters; False if unknown."""
        with self._conn.write() as db:
            found = db.execute(
                "DELETE FROM dead_letters WHERE id = ? RETURNING task, queue, priority, body, "
                "lease_s, max_deliveries, result_ttl_s",
                (task_id,),
            ).fetchone()
            if found is None:
                return False
            db.execute("DELETE FROM results WHERE task_id = ?", (task_id,))
            db.execute(SEND_READY, (task_id, *found))
            return True

    def purge_dead(self) -> int:
        """Delete every dead letter; return how many."""
        with self._conn.write() as db:
            return db.execute("DELETE FROM dead_letters").rowcount

    def purge(self, queue: str) -> int:
        """Delete the queue's ready and scheduled messages (leased ones stay)."""
        with self._conn.write() as db:
            ready = db.execute(
                "DELETE FROM messages WHERE queue = ? AND lease_until IS NULL", (queue,)
            ).rowcount
            return ready + db.execute("DELETE FROM scheduled WHERE queue = ?", (queue,)).rowcount

    def cleanup(self) -> int:
        """Delete expired results and workers silent for ``worker_expiry_s``."""
        with self._conn.write() as db:
            now = self.now()
            results = db.execute("DELETE FROM results WHERE expires_at <= ?", (now,)).rowcount
            silent = db.execute(
                "DELETE FROM workers WHERE heartbeat_at < ?", (now - self.worker_expiry_s,)
            ).rowcount
        return results + silent

    def close(self) -> None:
        """Close this process's connection; the broker is unusable afterwards."""
        self._conn.close()
