"""arq on Redis (asyncio). arq has no multi-process worker: 2 ``arq`` worker processes,
each with its defaults (up to 10 jobs at once, polling the queue every 0.5 s, results
kept 3,600 s), installed with its pinned redis-py 5 and hiredis.

No bulk send. Done: a job leaves the ``arq:queue`` sorted set when it finished. The
round trip uses ``poll_delay`` 10 ms for the worker and for ``job.result()``
(non-default: both poll every 0.5 s by default, so a round trip would take a poll
period by construction, and 500 of them minutes).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterable
from typing import Any

import harness
from arq import create_pool
from arq.connections import RedisSettings
from redis import Redis

PACKAGES = ("arq", "redis", "hiredis")
URL = os.environ["BENCH_REDIS_URL"]  # set by run.py before import (see its docstring)
SKIPPED = {"bulk": "arq has no bulk enqueue"}
SETTINGS = RedisSettings.from_dsn(URL)


async def noop(ctx: dict[str, Any], x: int) -> None:
    """Does nothing: measures the system, not the task."""


async def echo(ctx: dict[str, Any], x: int) -> int:
    """Returns its argument, so that the round trip has a result to wait for."""
    return x


class WorkerSettings:
    """arq's defaults, on the benchmark's server."""

    functions = [noop, echo]
    redis_settings = SETTINGS


class RoundTripSettings:
    """Polls every 10 ms instead of 0.5 s (see the module docstring). arq reads only the
    class's own attributes, so they are repeated rather than inherited."""

    functions = [noop, echo]
    redis_settings = SETTINGS
    poll_delay = 0.01


loop = asyncio.new_event_loop()
pool = loop.run_until_complete(create_pool(SETTINGS))


async def send_all(calls: Iterable[int]) -> None:
    for i in calls:
        await pool.enqueue_job("noop", i)


def send(i: int) -> None:
    loop.run_until_complete(pool.enqueue_job("noop", i))


async def call_async(i: int) -> None:
    job = await pool.enqueue_job("echo", i)
    assert job is not None
    await job.result(timeout=60, poll_delay=0.01)


def workers(settings: str) -> list[harness.Command]:
    argv = [sys.executable, "-m", "arq", f"arq_bench.{settings}"]
    return [harness.Command(argv) for _ in range(2)]


def enqueue(o: harness.Options) -> dict[str, float]:
    send(0)
    return {"per_s": harness.elapsed_rate(o.tasks, lambda: loop.run_until_complete(
        send_all(range(o.tasks))))}  # fmt: skip


def processing(o: harness.Options) -> dict[str, float]:
    loop.run_until_complete(send_all(range(o.tasks)))
    client = Redis.from_url(URL)
    return harness.processing_rate(
        workers("WorkerSettings"), lambda: o.tasks - int(client.zcard("arq:queue")), o.tasks,
        budget_s=o.budget_s,
    )  # fmt: skip


def round_trip(o: harness.Options) -> dict[str, float]:
    return harness.round_trip_ms(
        workers("RoundTripSettings"), lambda i: loop.run_until_complete(call_async(i)),
        o.round_trips,
    )  # fmt: skip


def memory(o: harness.Options) -> dict[str, float]:
    return harness.memory_mb_per_10k(send, o.memory_sends)
