"""Dramatiq on Redis, defaults: ``dramatiq dramatiq_bench -p 2`` (2 worker processes of 8
threads each, Dramatiq's default; prefetch and late ack through its Lua dispatch script).

Bulk: ``group(...).run()``, which enqueues the messages one by one (Dramatiq has no
pipelined bulk send). Done: a message leaves the queue's ``.msgs`` hash when it is
acked, after it ran. The round trip uses a second actor with ``store_results=True``
and the ``Results`` middleware on the same Redis (off by default), waiting with
``get_result(block=True)``.
"""

from __future__ import annotations

import os
import sys

import dramatiq
import harness
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends.redis import RedisBackend

PACKAGES = ("dramatiq", "redis")
URL = os.environ["BENCH_REDIS_URL"]  # set by run.py before import (see its docstring)
broker = RedisBroker(url=URL)
broker.add_middleware(Results(backend=RedisBackend(url=URL)))
dramatiq.set_broker(broker)


@dramatiq.actor(actor_name="noop")
def noop(x: int) -> None:
    """Does nothing: measures the system, not the task."""


@dramatiq.actor(actor_name="echo", store_results=True)
def echo(x: int) -> int:
    """Returns its argument, so that the round trip has a result to wait for."""
    return x


def send_many(calls: range) -> None:
    dramatiq.group(noop.message(i) for i in calls).run()


def worker() -> list[harness.Command]:
    argv = [sys.executable, "-m", "dramatiq", "dramatiq_bench", "-p", "2"]
    return [harness.Command(argv)]


def done_of(n: int) -> int:
    return n - int(broker.client.hlen("dramatiq:default.msgs"))


def call(i: int) -> None:
    echo.send(i).get_result(block=True, timeout=60_000)


def enqueue(o: harness.Options) -> dict[str, float]:
    return harness.enqueue_rate(noop.send, o.tasks)


def bulk(o: harness.Options) -> dict[str, float]:
    return harness.bulk_rate(send_many, o.tasks)


def processing(o: harness.Options) -> dict[str, float]:
    for start in range(0, o.tasks, harness.BATCH):
        send_many(range(start, min(o.tasks, start + harness.BATCH)))
    return harness.processing_rate(worker(), lambda: done_of(o.tasks), o.tasks, budget_s=o.budget_s)


def round_trip(o: harness.Options) -> dict[str, float]:
    return harness.round_trip_ms(worker(), call, o.round_trips)


def memory(o: harness.Options) -> dict[str, float]:
    return harness.memory_mb_per_10k(noop.send, o.memory_sends)
