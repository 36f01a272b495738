"""The broker contract: what every broker (SQLite, Redis, ...) must do.

Brokers store opaque bytes; encoding happens above them. Delivery is
at-least-once: :meth:`Broker.reserve` *leases* messages, a lease that is not
renewed (:meth:`Broker.extend`) expires and the message becomes deliverable
again, and a message leaves the broker only when it is settled
(:meth:`Broker.settle`) after the task finished and its result is stored, in
the same transaction.

Every lease carries a *token* that changes with each delivery. Settling or
extending with a stale token does nothing (fencing): a worker whose lease
expired and whose message went to another worker cannot overwrite the newer
delivery's outcome.

Lease deadlines, ETAs and retry times come from the broker's own clock
(:meth:`Broker.now`), never a worker's.

``tests/brokers/`` holds the contract suite that every broker must pass.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from corral.results import TaskState

__all__ = [
    "Broker",
    "DeadLetter",
    "Delivery",
    "Envelope",
    "LeaseStatus",
    "QueueStats",
    "ResultRecord",
    "Settlement",
    "WorkerInfo",
]


class Envelope(NamedTuple):
    """A message as sent: routing fields plus the encoded task call (``body``).

    ``new_id`` is True when the sender generated ``id`` for this very send (see
    :mod:`corral.ids`), so no earlier message or stored result can carry it: a
    broker may then skip the idempotency checks a caller-chosen id needs (a
    resend of a pending id is ignored; a resend of a finished one replaces its
    result).

    A NamedTuple rather than a frozen dataclass: as immutable, and built about
    three times faster, which every ``delay()`` pays once per message.
    """

    id: str
    task: str
    queue: str
    body: bytes
    priority: int = 0
    delay_s: float = 0.0
    lease_s: float = 30.0
    max_deliveries: int = 5
    result_ttl_s: float = 86_400.0
    new_id: bool = False


@dataclass(frozen=True, slots=True)
class Delivery:
    """A leased message. ``token`` fences every later operation on this lease.

    ``deliveries`` counts reservations including this one; ``attempts`` counts
    the retries already scheduled for this message (0 on the first run).
    """

    id: str
    task: str
    queue: str
    priority: int
    body: bytes
    token: int
    deliveries: int
    attempts: int
    lease_s: float


@dataclass(frozen=True, slots=True)
class Settlement:
    """How a delivery ends, applied by :meth:`Broker.settle`.

    ``state`` says what happens:

    - ``SUCCEEDED``: store ``payload`` as the result, remove the message.
    - ``FAILED``: store ``payload`` (the encoded error) as the result, move the
      message to the dead letters with ``reason``.
    - ``DEAD``: like FAILED, for messages that never ran normally (undecodable,
      unknown task); the result's state is DEAD.
    - ``RETRYING``: keep the message, count one more attempt, deliver it again
      after ``delay_s``; ``payload`` is the error of the attempt that failed.
      A message revoked while it ran is settled REVOKED instead.
    - ``QUEUED``: hand the message back for immediate redelivery. After a graceful
      stop (``crashed=False``) this delivery does not count towards
      ``max_deliveries``; when the process running it died (``crashed=True``) it
      does, so a message that kills every worker ends in the dead letters.
    - ``REVOKED``: store a REVOKED result, remove the message.
    """

    id: str
    token: int
    state: TaskState
    payload: bytes = b""
    delay_s: float = 0.0
    reason: str = ""
    crashed: bool = False


class LeaseStatus(enum.Enum):
    """What :meth:`Broker.extend` found for one lease."""

    HELD = "held"  # renewed
    LOST = "lost"  # expired and re-leased, settled, or purged: stop caring about it
    REVOKED = "revoked"  # still held, but revoked with terminate=True: kill it now


@dataclass(frozen=True, slots=True)
class ResultRecord:
    """A stored outcome: the state and its encoded payload (result or error)."""

    task_id: str
    state: TaskState
    payload: bytes
    finished_at: float


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that will not run again unless requeued: why, and its last error."""

    id: str
    task: str
    queue: str
    reason: str
    error: bytes
    attempts: int
    deliveries: int
    died_at: float
    body: bytes


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Counts for one queue at one moment."""

    queue: str
    ready: int
    scheduled: int
    running: int
    dead: int


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker's registry entry. ``details`` is JSON text the worker maintains."""

    id: str
    host: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    started_at: float
    heartbeat_at: float = 0.0
    tasks_done: int = 0
    details: str = field(default="{}")


class Broker(abc.ABC):
    """The contract. All methods are safe to call from one thread per instance;
    a process that forks must open a new broker in the child (never share one).
    """

    url: str = ""

    # -- time -----------------------------------------------------------------
    @abc.abstractmethod
    def now(self) -> float:
        """The broker's clock, in seconds since the epoch."""

    # -- producing ------------------------------------------------------------
    @abc.abstractmethod
    def send(self, envelopes: Sequence[Envelope]) -> None:
        """Store messages atomically (one transaction / round trip for the batch).

        An envelope whose id is already pending is ignored (``task_id`` makes a
        send idempotent); one whose id has a stored result replaces it.
        """

    @abc.abstractmethod
    def revoke(self, task_id: str, *, terminate: bool = False) -> bool:
        """Revoke a task. A pending one is removed and gets a REVOKED result; a
        running one is flagged: it will not be retried, and with ``terminate``
        its lease reports :attr:`LeaseStatus.REVOKED` so the worker kills it.
        Returns False if the task is unknown or already final."""

    # -- consuming ------------------------------------------------------------
    @abc.abstractmethod
    def reserve(self, queues: Sequence[str], limit: int, *, owner: str) -> list[Delivery]:
        """Lease up to ``limit`` deliverable messages from ``queues``, highest
        priority first, FIFO within a priority. Due scheduled/retrying messages
        become deliverable; expired leases are deliverable again. A message
        reaching more than its ``max_deliveries`` goes to the dead letters
        instead (a poison message that kills its workers)."""

    @abc.abstractmethod
    def wait_ready(self, queues: Sequence[str], timeout_s: float) -> None:
        """Block until a message may be deliverable in ``queues`` or the timeout
        passes. May return early; must not busy-poll the broker."""

    @abc.abstractmethod
    def extend(self, leases: Sequence[tuple[str, int]]) -> list[LeaseStatus]:
        """Renew leases given as ``(id, token)``, each by its message's ``lease_s``."""

    @abc.abstractmethod
    def settle(self, settlements: Sequence[Settlement]) -> list[bool]:
        """Apply outcomes atomically; one bool per settlement, False where the
        token was stale (the outcome was dropped)."""

    # -- results --------------------------------------------------------------
    @abc.abstractmethod
    def get_result(self, task_id: str) -> ResultRecord | None:
        """The stored outcome, or None while the task has none (or it expired)."""

    @abc.abstractmethod
    def wait_result(self, task_id: str, timeout_s: float | None) -> ResultRecord | None:
        """Block until the task has an outcome; None after ``timeout_s``."""

    @abc.abstractmethod
    def state(self, task_id: str) -> TaskState | None:
        """The task's state, or None for an id the broker does not know."""

    # -- registry -------------------------------------------------------------
    @abc.abstractmethod
    def register_worker(self, info: WorkerInfo) -> None:
        """Add or replace a worker's registry entry (sets its heartbeat to now)."""

    @abc.abstractmethod
    def heartbeat(self, worker_id: str, *, tasks_done: int, details: str = "{}") -> None:
        """Refresh a worker's heartbeat and counters."""

    @abc.abstractmethod
    def unregister_worker(self, worker_id: str) -> None:
        """Remove a worker's registry entry."""

    @abc.abstractmethod
    def workers(self) -> list[WorkerInfo]:
        """Every registered worker."""

    # -- inspection and maintenance --------------------------------------------
    @abc.abstractmethod
    def queue_stats(self) -> list[QueueStats]:
        """Counts per queue that has messages or dead letters, sorted by name."""

    @abc.abstractmethod
    def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        """The newest dead letters first."""

    @abc.abstractmethod
    def requeue_dead(self, task_id: str) -> bool:
        """Move a dead letter back to its queue (attempts and deliveries reset)."""

    @abc.abstractmethod
    def purge_dead(self) -> int:
        """Delete every dead letter; return how many."""

    @abc.abstractmethod
    def purge(self, queue: str) -> int:
        """Delete the queue's messages that are not leased; return how many."""

    @abc.abstractmethod
    def cleanup(self) -> int:
        """Delete expired results and workers silent for long; return how many rows."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. The broker is unusable afterwards."""
