"""The Redis broker: leases, priorities, schedules and results in one Redis.

Why Lua scripts rather than streams with consumer groups: streams deliver in
append order only, so priorities would need one stream per level and a merge
on the client; their pending-entry lists know delivery counts but not lease
tokens, so fencing a late settle would need a second structure anyway, and
claiming expired entries (``XAUTOCLAIM``) uses idle time measured per entry,
not a deadline the broker can extend. One script per operation does each step
atomically on the server (see ``lua/common.lua`` for the key layout):

- ``send`` of messages with ids generated for them and no countdown is one
  ``RPUSH`` of packed envelopes onto the inbox list: as cheap for the producer
  as a raw push, and atomic for a batch. Every script that reads messages
  first *accepts* the inbox in send order (idempotency check, message hash,
  ready sorted set with score ``-priority * 2**40 + seq``: higher priority
  first, FIFO within). A send with a countdown is a script call, so its due
  time is the server's clock at send time; so is a send with a caller-chosen
  id, so that a resend of a finished task has replaced its old outcome before
  ``send`` returns (a waiter never sees the stale one).
- ``reserve`` promotes due scheduled messages, reclaims expired leases, pops
  the best ids, dead-letters those already delivered ``max_deliveries`` times
  and leases the rest: lease deadlines live in a sorted set scored by
  ``TIME`` read inside the script, never the client's clock.
- ``settle`` and ``extend`` compare the lease token first, so a stale worker
  changes nothing; a settle resent after a lost reply recognises the outcome
  its first run stored.

Blocking never polls: :meth:`RedisBroker.wait_ready` blocks with ``BLMOVE``
of the inbox onto itself (it wakes when something is sent or a script nudges,
and takes nothing), bounded by the earliest due or expiring message, and
:meth:`RedisBroker.wait_result` does ``BLMOVE key key`` on the task's own
``done`` list, whose one element settle makes the outcome itself: the reply
that wakes the waiter carries the result (every waiter wakes). Nothing
subscribes to pub/sub, at send time or ever (seeds/004: Celery's per-task
subscriptions broke under gevent). hiredis is used by redis-py automatically
when it is installed. Scripts build key names from the prefix, so this needs a
standalone Redis >= 6.2 (not Cluster).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Sequence
from typing import Any

import redis
from redis.connection import Connection

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
from corral.brokers.redis_connection import RedisConnection, command, send_packed
from corral.brokers.redis_options import RedisOptions, split_url_options, with_url_options
from corral.brokers.redis_scripts import Script, load_scripts
from corral.brokers.redis_watch import InboxWatch, WatchReserve
from corral.errors import ConfigError
from corral.results import TaskState

__all__ = ["RedisBroker"]

_MAX_ABS_PRIORITY = 4095  # the ready score keeps FIFO order exact only below 2**12
_SETTLE_STATES = frozenset(
    {
        TaskState.SUCCEEDED,
        TaskState.FAILED,
        TaskState.DEAD,
        TaskState.RETRYING,
        TaskState.QUEUED,
        TaskState.REVOKED,
    }
)
_LEASE_STATUS = (LeaseStatus.LOST, LeaseStatus.HELD, LeaseStatus.REVOKED)
_MIN_BLOCK_S = 0.001  # Redis reads a blocking timeout of 0 as "forever"
_BOUND_HINT_MAX_AGE_S = 0.05  # an older reserve's answer is not trusted for a wait


class RedisBroker(Broker):
    """A broker in a standalone Redis (>= 6.2) reached through redis-py.

    ``client_or_url`` is a ``redis://`` or ``rediss://`` URL (user, password
    and db number in the URL) or a ``redis.Redis`` client whose settings are
    copied. Options are listed in :class:`RedisOptions`, as keyword arguments
    or in the URL's query string; unknown ones raise ConfigError. ``url``
    names the same store (prefix included) for another process; it is empty
    for a broker made from a client. Connection failures raise BrokerUnavailable within
    ``connect_timeout_s``. Safe across ``fork``: the child opens its own pool.
    """

    def __init__(self, client_or_url: str | redis.Redis, **options: Any) -> None:
        target = client_or_url
        if isinstance(target, str):
            # Options may ride in the URL's query (?key_prefix=app), so that ``url``
            # names this exact store for another process; explicit ones win.
            target, in_url = split_url_options(target)
            options = {**in_url, **options}
        self._options = RedisOptions.from_mapping(options)
        self._conn = RedisConnection(target, self._options)
        self._scripts = load_scripts()
        self._prefix = self._options.key_prefix
        self._inbox = f"{self._prefix}:inbox"
        # What the last short reserve said about the wait that follows it (see _take_bound).
        self._bound_hint: tuple[tuple[str, ...], float, float] | None = None
        if isinstance(target, str):
            self.url = with_url_options(target, {"key_prefix": self._prefix})
        else:
            self.url = ""

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisBroker:
        """A broker for ``url`` (``redis://[user:password@]host:port/db`` or ``rediss://``)."""
        return cls(url, **options)

    def __repr__(self) -> str:
        return f"RedisBroker(prefix={self._prefix!r})"

    # -- plumbing -----------------------------------------------------------------
    def _run(self, name: str, args: Sequence[Any] = ()) -> Any:
        script: Script = self._scripts[name]
        argv = [self._prefix, *args]
        return self._conn.call(lambda connection: script.run(connection, argv))

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}:{kind}:{name}"

    def _command(self, *args: Any) -> Any:
        return self._conn.call(lambda connection: command(connection, *args))

    # -- time -------------------------------------------------------------------
    def now(self) -> float:
        """The Redis server's clock (``TIME``), in seconds since the epoch."""
        seconds, micros = self._command("TIME")
        return int(seconds) + int(micros) / 1_000_000

    # -- producing --------------------------------------------------------------
    def send(self, envelopes: Sequence[Envelope]) -> None:
        """Store the batch atomically in one round trip.

        Without a countdown that is one ``RPUSH`` onto the inbox (as cheap as a raw
        push; the scripts accept it later, in order); with one, a script call, so
        the due time is the server's clock at send time.
        """
        if not envelopes:
            return
        if any(env.delay_s > 0 or not env.new_id for env in envelopes):
            self._send_script(envelopes)
            return
        request = _inbox_push(self._inbox.encode(), envelopes)
        self._conn.call(lambda connection: send_packed(connection, request))

    def _send_script(self, envelopes: Sequence[Envelope]) -> None:
        """Accept the batch now: due times from the server's clock, resends checked."""
        args: list[Any] = []
        for env in envelopes:
            _check_priority(env)
            args += (env.id, env.task, env.queue, env.body, env.priority, env.delay_s,
                     env.lease_s, env.max_deliveries, env.result_ttl_s)  # fmt: skip
        self._run("send", args)

    def revoke(self, task_id: str, *, terminate: bool = False) -> bool:
        """Remove a pending task (REVOKED result) or flag a running one (no retry;
        with ``terminate``, its lease reports REVOKED)."""
        return bool(self._run("revoke", [task_id, int(terminate)]))

    # -- consuming --------------------------------------------------------------
    def reserve(self, queues: Sequence[str], limit: int, *, owner: str) -> list[Delivery]:
        """Lease up to ``limit`` messages in one script call."""
        if limit < 1 or not queues:
            return []
        names = tuple(dict.fromkeys(queues))
        return self._reserved(names, self._run("reserve", [limit, owner, *names]))

    def _reserved(self, names: tuple[str, ...], reply: list[Any]) -> list[Delivery]:
        """The deliveries of a reserve's reply; when it leased fewer than its limit,
        its answer for the wait that follows is kept for :meth:`_take_bound`."""
        bound, rows = reply
        if bound:
            self._bound_hint = (names, float(bound), time.monotonic())
        return [_delivery(row) for row in rows]

    def _take_bound(self, queues: tuple[str, ...]) -> float | None:
        """The bound the last short reserve of ``queues`` computed, aged, if it came
        just now; else None (the wait asks ``wait_bound``). Used once.

        The reserve accepted the inbox as ``wait_bound`` would have, so the wait can
        block on the inbox at once: one round trip less between a task and the wait
        for the next, which is the round trip of a lone ``delay().get()``. Between the
        look and the block, a message another worker's script accepts (it does not
        nudge) is found at the bound or within the caller's wait slice, as after a
        ``wait_bound``; the age limit keeps that window as short as ``wait_bound``'s.
        """
        hint, self._bound_hint = self._bound_hint, None
        if hint is None or hint[0] != queues:
            return None
        _, bound_s, at = hint
        age_s = time.monotonic() - at
        if age_s > _BOUND_HINT_MAX_AGE_S:
            return None
        return bound_s if bound_s < 0 else max(0.0, bound_s - age_s)

    def wait_ready(self, queues: Sequence[str], timeout_s: float) -> None:
        """Block on the inbox until a message is ready in ``queues``, the next
        scheduled or leased one falls due, or ``timeout_s`` passes."""
        if not queues:
            return
        names = list(dict.fromkeys(queues))
        deadline = time.monotonic() + timeout_s
        while True:
            # The inbox wakes every idle worker (a send to another queue, a nudge):
            # only a ready or due message in these queues, or the deadline, ends the wait.
            bound_s = float(self._run("wait_bound", names))
            wait_s = deadline - time.monotonic()
            if bound_s >= 0:
                wait_s = min(wait_s, bound_s)
            if wait_s < _MIN_BLOCK_S:
                return
            wait_s = min(wait_s, self._options.block_slice_s)
            # BLMOVE onto itself, same side: blocks until the inbox is not empty,
            # takes nothing and keeps the order (the scripts accept it in wait_bound).
            woke = self._command(
                "BLMOVE", self._inbox, self._inbox, "RIGHT", "RIGHT", f"{wait_s:.3f}"
            )
            if woke is not None:
                # Something was sent (or nudged): the caller's reserve looks at once. A
                # send to other queues costs it one empty reserve, not a second look here.
                return

    def watch_ready(
        self, queues: Sequence[str], timeout_s: float, *, limit: int = 0, owner: str = ""
    ) -> InboxWatch | None:
        """Start the wait of :meth:`wait_ready` without blocking (see redis_watch.py):
        the caller selects on the watch's socket and calls its ``finish``. None when
        the reserve just before found a message deliverable now. With ``limit``, the
        wait ends with a reserve of up to ``limit`` for ``owner``, run by Redis as
        soon as the inbox wakes it (the watch's ``taken``)."""
        if not queues:
            raise ConfigError("RedisBroker.watch_ready: no queues given")
        names = tuple(dict.fromkeys(queues))
        bound_s = self._take_bound(names)
        if bound_s is not None and 0 <= bound_s < _MIN_BLOCK_S:
            return None
        reserve = None
        if limit > 0:
            reserve = WatchReserve(self._scripts["reserve"], [self._prefix, limit, owner, *names],
                                   limit, functools.partial(self._reserved, names),
                                   self._nudge)  # fmt: skip
        return InboxWatch(self._conn, self._scripts["wait_bound"], [self._prefix, *names],
                          self._inbox, timeout_s, self._options.block_slice_s,
                          bound_s=bound_s, reserve=reserve)  # fmt: skip

    def _nudge(self) -> None:
        """Wake every idle wait on the inbox (an empty entry; the next script drops it)."""
        self._command("RPUSH", self._inbox, "")

    def extend(self, leases: Sequence[tuple[str, int]]) -> list[LeaseStatus]:
        """Renew leases by each message's ``lease_s`` from the server's clock."""
        if not leases:
            return []
        args = [part for task_id, token in leases for part in (task_id, token)]
        return [_LEASE_STATUS[int(code)] for code in self._run("extend", args)]

    def settle(self, settlements: Sequence[Settlement]) -> list[bool]:
        """Apply outcomes in one script call; False where the token was stale."""
        if not settlements:
            return []
        args: list[Any] = []
        for s in settlements:
            if s.state not in _SETTLE_STATES:
                valid = ", ".join(sorted(st.name for st in _SETTLE_STATES))
                raise ConfigError(f"Settlement.state {s.state.name} is not one of {valid}")
            args += (s.id, s.token, s.state.value, s.payload, s.delay_s, s.reason, int(s.crashed))
        script, prefix, runs = self._scripts["settle"], self._prefix, [0]

        def run(connection: Connection) -> Any:
            # A resend after a lost reply must recognise its own already-applied outcome.
            runs[0] += 1
            return script.run(connection, [prefix, int(runs[0] > 1), *args])

        return [bool(ok) for ok in self._conn.call(run)]

    # -- results ----------------------------------------------------------------
    def get_result(self, task_id: str) -> ResultRecord | None:
        """The stored outcome, or None."""
        entry = self._command("LINDEX", self._key("done", task_id), 0)
        return None if entry is None else _outcome(task_id, entry)

    def wait_result(self, task_id: str, timeout_s: float | None) -> ResultRecord | None:
        """Block on the task's ``done`` list (``BLMOVE`` onto itself, which returns its
        one element, the outcome, at once or when settle stores it); None after timeout_s."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        done = self._key("done", task_id)
        while True:
            wait_s = self._options.block_slice_s
            if deadline is not None:
                wait_s = min(wait_s, deadline - time.monotonic())
            if wait_s < _MIN_BLOCK_S:
                return self.get_result(task_id)
            entry = self._command("BLMOVE", done, done, "RIGHT", "LEFT", f"{wait_s:.3f}")
            if entry is not None:
                return _outcome(task_id, entry)

    def state(self, task_id: str) -> TaskState | None:
        """The task's state: its message's, else its stored result's, else None."""
        name = self._run("state", [task_id])
        return None if name is None else TaskState(name.decode())

    # -- registry ---------------------------------------------------------------
    def register_worker(self, info: WorkerInfo) -> None:
        """Add or replace the worker's entry; its heartbeat is the server's TIME."""
        args = [info.id, info.host, info.pid, json.dumps(list(info.queues)), info.concurrency,
                info.started_at, info.tasks_done, info.details]  # fmt: skip
        self._run("register_worker", args)

    def heartbeat(self, worker_id: str, *, tasks_done: int, details: str = "{}") -> None:
        """Refresh the worker's heartbeat (server TIME) and counters."""
        self._run("heartbeat", [worker_id, tasks_done, details])

    def unregister_worker(self, worker_id: str) -> None:
        """Remove the worker's entry."""
        prefix = self._prefix

        def remove(connection: Connection) -> None:
            command(connection, "MULTI")
            command(connection, "DEL", f"{prefix}:w:{worker_id}")
            command(connection, "ZREM", f"{prefix}:workers", worker_id)
            command(connection, "EXEC")

        self._conn.call(remove)

    def workers(self) -> list[WorkerInfo]:
        """Every registered worker, by id."""
        return sorted((_worker(row) for row in self._run("workers")), key=lambda w: w.id)

    # -- inspection and maintenance -----------------------------------------------
    def queue_stats(self) -> list[QueueStats]:
        """Counts per queue that has anything in it, sorted by name."""
        stats = [
            QueueStats(row[0].decode(), int(row[1]), int(row[2]), int(row[3]), int(row[4]))
            for row in self._run("queue_stats")
        ]
        return sorted(stats, key=lambda s: s.queue)

    def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        """The newest dead letters first, at most ``limit``."""
        if limit < 1:
            return []
        return [_dead_letter(row) for row in self._run("dead_letters", [limit])]

    def requeue_dead(self, task_id: str) -> bool:
        """Move a dead letter back to its queue with fresh counters."""
        return bool(self._run("requeue_dead", [task_id]))

    def purge_dead(self) -> int:
        """Delete every dead letter; return how many."""
        return int(self._run("purge_dead"))

    def purge(self, queue: str) -> int:
        """Delete the queue's ready and scheduled messages; return how many."""
        return int(self._run("purge", [queue]))

    def cleanup(self) -> int:
        """Count results Redis expired since the last call, remove workers silent for
        ``worker_expiry_s``; return both counts' sum."""
        return int(self._run("cleanup", [self._options.worker_expiry_s]))

    def close(self) -> None:
        """Disconnect; the broker is unusable afterwards."""
        self._conn.close()


def _check_priority(env: Envelope) -> None:
    _entry_parts(len(env.id), env.task, env.queue, env.priority, env.lease_s,
                 env.max_deliveries, env.result_ttl_s)  # fmt: skip


def _inbox_push(inbox: bytes, envelopes: Sequence[Envelope]) -> bytes:
    """The whole ``RPUSH inbox ENTRY...`` request in RESP, built here in one pass (the
    hot path of every send: redis-py's generic packing cost as much as the rest).

    An entry is ``ID_LEN TASK_LEN QUEUE_LEN PRIORITY LEASE_S MAX_DELIVERIES
    RESULT_TTL_S `` then id, task, queue and body back to back; ``unpack_entry`` in
    ``lua/common.lua`` reads it back. Everything but the id and body is the same for
    every send of a task, so it is formatted once (see _entry_parts).
    """
    parts = [b"*%d\r\n$5\r\nRPUSH\r\n$%d\r\n%s\r\n" % (len(envelopes) + 2, len(inbox), inbox)]
    for env in envelopes:
        id_b = env.id.encode()
        head, names = _entry_parts(len(id_b), env.task, env.queue, env.priority, env.lease_s,
                                   env.max_deliveries, env.result_ttl_s)  # fmt: skip
        size = len(head) + len(id_b) + len(names) + len(env.body)
        parts.append(b"$%d\r\n%s%s%s%s\r\n" % (size, head, id_b, names, env.body))
    return b"".join(parts)


@functools.lru_cache(maxsize=1024)
def _entry_parts(
    id_len: int,
    task: str,
    queue: str,
    priority: int,
    lease_s: float,
    max_deliveries: int,
    result_ttl_s: float,
) -> tuple[bytes, bytes]:
    """An inbox entry's text before the id, and its task and queue names."""
    if abs(priority) > _MAX_ABS_PRIORITY:
        raise ConfigError(
            f"{task}: priority {priority} is out of range for the Redis broker; "
            f"use a value between -{_MAX_ABS_PRIORITY} and {_MAX_ABS_PRIORITY}"
        )
    task_b, queue_b = task.encode(), queue.encode()
    head = (
        f"{id_len} {len(task_b)} {len(queue_b)} {priority} {lease_s!r} "
        f"{max_deliveries} {result_ttl_s!r} "
    )
    return head.encode(), task_b + queue_b


def _outcome(task_id: str, entry: bytes) -> ResultRecord:
    """A ``done`` list element, ``STATE FINISHED_AT TOKEN PAYLOAD`` (``store_result``
    in ``lua/common.lua``), as a record."""
    state, finished_at, _token, payload = entry.split(b" ", 3)
    return ResultRecord(task_id, TaskState(state.decode()), payload, float(finished_at))


def _text(value: bytes) -> str:
    return value.decode()


def _delivery(row: list[Any]) -> Delivery:
    task_id, task, queue, priority, body, token, deliveries, attempts, lease_s = row
    return Delivery(
        id=_text(task_id),
        task=_text(task),
        queue=_text(queue),
        priority=int(priority),
        body=body,
        token=int(token),
        deliveries=int(deliveries),
        attempts=int(attempts),
        lease_s=float(lease_s),
    )


def _dead_letter(row: list[Any]) -> DeadLetter:
    task_id, task, queue, reason, error, attempts, deliveries, died_at, body = row
    return DeadLetter(
        id=_text(task_id),
        task=_text(task),
        queue=_text(queue),
        reason=_text(reason or b""),
        error=error or b"",
        attempts=int(attempts),
        deliveries=int(deliveries),
        died_at=float(died_at),
        body=body or b"",
    )


def _worker(row: list[Any]) -> WorkerInfo:
    worker_id, host, pid, queues, concurrency, started_at, beat_at, done, details = row
    return WorkerInfo(
        id=_text(worker_id),
        host=_text(host),
        pid=int(pid),
        queues=tuple(json.loads(queues)),
        concurrency=int(concurrency),
        started_at=float(started_at),
        heartbeat_at=float(beat_at),
        tasks_done=int(done),
        details=_text(details),
    )
