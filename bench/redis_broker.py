"""Micro benchmark of the Redis broker against raw redis-py floors, on a private server.

    .venv/bin/python bench/redis_broker.py [--messages N] [--batch B]

Prints per-call send/s and bulk send/s beside a raw ``LPUSH``-per-call floor
and a pipelined ``LPUSH`` floor, and the reserve+settle throughput in batches.
The target: per-call send at >= 90% of the raw per-call LPUSH rate (both are
one round trip; the difference is the script's work on the server).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.helpers

from tests.helpers.redis_server import running_redis

from corral.brokers.base import Envelope, Settlement
from corral.brokers.redis import RedisBroker
from corral.results import TaskState

BODY = b'{"args":[1,2],"kwargs":{}}'


def rate(count: int, run: Callable[[], None]) -> float:
    """Operations per second of ``run`` doing ``count`` operations."""
    started = time.perf_counter()
    run()
    return count / (time.perf_counter() - started)


def envelopes(count: int) -> list[Envelope]:
    return [Envelope(id=uuid.uuid4().hex, task="noop", queue="bench", body=BODY)
            for _ in range(count)]  # fmt: skip


def raw_lpush_per_call(client: redis.Redis, count: int) -> float:
    def run() -> None:
        for _ in range(count):
            client.lpush("raw", BODY)

    return rate(count, run)


def raw_lpush_pipelined(client: redis.Redis, count: int, batch: int) -> float:
    def run() -> None:
        for _ in range(count // batch):
            pipe = client.pipeline(transaction=False)
            for _ in range(batch):
                pipe.lpush("raw", BODY)
            pipe.execute()

    return rate(count, run)


def send_per_call(broker: RedisBroker, count: int) -> float:
    single = [[e] for e in envelopes(count)]

    def run() -> None:
        for one in single:
            broker.send(one)

    return rate(count, run)


def send_bulk(broker: RedisBroker, count: int, batch: int) -> float:
    batches = [envelopes(batch) for _ in range(count // batch)]

    def run() -> None:
        for group in batches:
            broker.send(group)

    return rate(count, run)


def reserve_settle(broker: RedisBroker, batch: int) -> tuple[int, float]:
    done = 0
    started = time.perf_counter()
    while got := broker.reserve(["bench"], batch, owner="bench"):
        broker.settle([Settlement(d.id, d.token, TaskState.SUCCEEDED, b"null") for d in got])
        done += len(got)
    return done, done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    opts = parser.parse_args()
    count, batch = opts.messages, opts.batch
    with running_redis() as server:
        client = redis.Redis.from_url(server.url)
        broker = RedisBroker(server.url, key_prefix="bench")
        broker.send(envelopes(1))  # load the script, open the connection
        client.ping()
        raw_call = raw_lpush_per_call(client, count)
        call = send_per_call(broker, count)
        raw_pipe = raw_lpush_pipelined(client, count, batch)
        bulk = send_bulk(broker, count, batch)
        settled, cycle = reserve_settle(broker, batch)
        broker.close()
        client.close()
    print(f"redis broker benchmark: {count} messages, batches of {batch}")
    print(f"  raw LPUSH per call        {raw_call:>10,.0f} /s")
    print(f"  send per call             {call:>10,.0f} /s   ({call / raw_call:.0%} of raw)")
    print(f"  raw LPUSH pipelined       {raw_pipe:>10,.0f} /s")
    print(f"  send in batches           {bulk:>10,.0f} /s   ({bulk / raw_pipe:.0%} of raw)")
    print(f"  reserve+settle in batches {cycle:>10,.0f} /s   ({settled} messages)")


if __name__ == "__main__":
    main()
