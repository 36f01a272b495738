"""Huey on Redis: ``RedisHuey`` and ``huey_consumer -w 2 -k process`` (2 worker processes;
Huey's default is threads), blocking dequeue (``BRPOP``, its default).

Huey takes a task off the queue before it runs it (a killed consumer loses it), so
"done" is the queue being empty: at most the 2 running tasks are counted early.
Bulk: ``task.map(...)``, which enqueues one by one. The round trip waits with
``result.get(blocking=True)`` and ``notify_result=True`` (non-default: without it the
wait polls from 50 ms up; with it, a ``BLPOP`` on a notification key).
``huey_sqlite_bench`` runs the same workloads on ``SqliteHuey``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import harness
from huey import Huey, RedisHuey

PACKAGES = ("huey", "redis")
URL = os.environ["BENCH_REDIS_URL"]  # set by run.py before import (see its docstring)


def _noop(x: int) -> None:
    """Does nothing: measures the system, not the task."""


def _echo(x: int) -> int:
    """Returns its argument, so that the round trip has a result to wait for."""
    return x


@dataclass(frozen=True)
class HueyBench:
    """The five workloads on one Huey instance, whose consumer imports ``instance_path``."""

    huey: Huey
    instance_path: str
    noop: Any
    echo: Any

    @classmethod
    def on(cls, huey: Huey, instance_path: str) -> HueyBench:
        noop = huey.task(name="noop")(_noop)
        echo = huey.task(name="echo")(_echo)
        return cls(huey=huey, instance_path=instance_path, noop=noop, echo=echo)

    def consumer(self) -> list[harness.Command]:
        main = "from huey.bin.huey_consumer import consumer_main; consumer_main()"
        argv = [sys.executable, "-c", main, self.instance_path, "-w", "2", "-k", "process"]
        return [harness.Command(argv)]

    def call(self, i: int) -> None:
        self.echo(i).get(blocking=True, timeout=60)

    def enqueue(self, o: harness.Options) -> dict[str, float]:
        return harness.enqueue_rate(self.noop, o.tasks)

    def bulk(self, o: harness.Options) -> dict[str, float]:
        return harness.bulk_rate(self.noop.map, o.tasks)

    def processing(self, o: harness.Options) -> dict[str, float]:
        for start in range(0, o.tasks, harness.BATCH):
            self.noop.map(range(start, min(o.tasks, start + harness.BATCH)))

        def done() -> int:
            return o.tasks - int(self.huey.pending_count())

        return harness.processing_rate(self.consumer(), done, o.tasks, budget_s=o.budget_s)

    def round_trip(self, o: harness.Options) -> dict[str, float]:
        return harness.round_trip_ms(self.consumer(), self.call, o.round_trips)

    def memory(self, o: harness.Options) -> dict[str, float]:
        return harness.memory_mb_per_10k(self.noop, o.memory_sends)


huey = RedisHuey("bench", url=URL, notify_result=True)
BENCH = HueyBench.on(huey, "huey_bench.huey")
enqueue, bulk, processing = BENCH.enqueue, BENCH.bulk, BENCH.processing
round_trip, memory = BENCH.round_trip, BENCH.memory
