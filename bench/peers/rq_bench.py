"""RQ on Redis, defaults: ``rq worker-pool -n 2`` (2 worker processes, each forking a
work horse per job, as RQ's default ``Worker`` does).

Bulk: ``Queue.enqueue_many`` (pipelined). Done: the finished-job registry's size (a job
enters it after it ran). Round trip: ``Job.latest_result(timeout=...)``, which blocks on
the result stream (``XREAD``) instead of polling.
"""

from __future__ import annotations

import os
import sys
import time

import harness
from redis import Redis
from rq import Queue

PACKAGES = ("rq", "redis")
URL = os.environ["BENCH_REDIS_URL"]  # set by run.py before import (see its docstring)
queue = Queue("default", connection=Redis.from_url(URL))


def noop(x: int) -> None:
    """Does nothing: measures the system, not the task."""


def send(i: int) -> None:
    queue.enqueue(noop, i)


def send_many(calls: range) -> None:
    queue.enqueue_many([Queue.prepare_data(noop, (i,)) for i in calls])


def worker() -> list[harness.Command]:
    rq = [sys.executable, "-c", "from rq.cli import main; main()"]
    return [harness.Command([*rq, "worker-pool", "-n", "2", "-u", URL, "-q", "default"])]


def done() -> int:
    return int(queue.connection.zcard(queue.finished_job_registry.key))


def call(i: int, *, timeout_s: float = 60.0) -> None:
    job = queue.enqueue(noop, i)
    deadline = time.monotonic() + timeout_s
    # Blocks in XREAD a second at a time: redis-py 8's default socket timeout (5 s)
    # would cut a longer block, and the first call waits for the pool to start.
    while job.latest_result(timeout=1) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"rq round trip: no result within {timeout_s} s")


def enqueue(o: harness.Options) -> dict[str, float]:
    return harness.enqueue_rate(send, o.tasks)


def bulk(o: harness.Options) -> dict[str, float]:
    return harness.bulk_rate(send_many, o.tasks)


def processing(o: harness.Options) -> dict[str, float]:
    for start in range(0, o.tasks, harness.BATCH):
        send_many(range(start, min(o.tasks, start + harness.BATCH)))
    return harness.processing_rate(worker(), done, o.tasks, budget_s=o.budget_s)


def round_trip(o: harness.Options) -> dict[str, float]:
    return harness.round_trip_ms(worker(), call, o.round_trips)


def memory(o: harness.Options) -> dict[str, float]:
    return harness.memory_mb_per_10k(send, o.memory_sends)
