"""Celery on Redis: broker and result backend on the benchmark's server, defaults otherwise.

Worker: ``celery worker -c 2`` (prefork pool of 2 processes, prefetch multiplier 4,
early ack: a task is acknowledged before it runs, so a killed worker loses it).
Bulk: ``group(...).apply_async()``. Done: the ``celery`` list and the ``unacked`` hash
are empty (an early-acked task leaves both before it runs: at most the 2 running tasks
are counted early). The result backend is configured because the round trip needs it:
with it, every send subscribes to the task's result channel (Celery's default).
"""

from __future__ import annotations

import os
import sys

import harness
from celery import Celery, group

PACKAGES = ("celery", "kombu", "redis")
URL = os.environ["BENCH_REDIS_URL"]  # set by run.py before import (see its docstring)
app = Celery("celery_bench", broker=URL, backend=URL)


@app.task(name="noop")
def noop(x: int) -> None:
    """Does nothing: measures the system, not the task."""


def send_many(calls: range) -> None:
    group(noop.s(i) for i in calls).apply_async()


def worker() -> list[harness.Command]:
    argv = [sys.executable, "-m", "celery", "-A", "celery_bench", "worker", "-c", "2",
            "--loglevel", "WARNING"]  # fmt: skip
    return [harness.Command(argv)]


def done_of(n: int) -> int:
    client = app.connection_for_write().default_channel.client  # pooled: one connection
    return n - int(client.llen("celery")) - int(client.hlen("unacked"))


def enqueue(o: harness.Options) -> dict[str, float]:
    return harness.enqueue_rate(noop.delay, o.tasks)


def bulk(o: harness.Options) -> dict[str, float]:
    return harness.bulk_rate(send_many, o.tasks)


def processing(o: harness.Options) -> dict[str, float]:
    for start in range(0, o.tasks, harness.BATCH):
        send_many(range(start, min(o.tasks, start + harness.BATCH)))
    return harness.processing_rate(worker(), lambda: done_of(o.tasks), o.tasks, budget_s=o.budget_s)


def round_trip(o: harness.Options) -> dict[str, float]:
    return harness.round_trip_ms(worker(), lambda i: noop.delay(i).get(timeout=60), o.round_trips)


def memory(o: harness.Options) -> dict[str, float]:
    return harness.memory_mb_per_10k(noop.delay, o.memory_sends)
