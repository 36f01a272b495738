"""The floor: a raw redis-py queue, the least work any Redis task queue can do.

Per call: one ``LPUSH`` a send. Bulk: ``LPUSH`` pipelined in batches of 1,000.
Processing: 2 consumer processes, each a ``BRPOP`` + ``INCR`` loop (one round trip to
take a task, one to count it: no batching, no acks, no leases: a lost task is lost).
Round trip: the client ``LPUSH``es, a consumer ``BRPOP``s and ``LPUSH``es a reply the
client ``BRPOP``s. ``floor`` runs ``redis-benchmark`` against the same server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlsplit

import harness
import redis

PACKAGES = ("redis",)
URL = os.environ["BENCH_REDIS_URL"]  # set by run.py before import (see its docstring)
QUEUE, DONE, REPLIES = "raw:q", "raw:done", "raw:replies"
BODY = b'["noop",[1],{}]'
CONSUMER = f"""
import sys, redis
client = redis.Redis.from_url(sys.argv[1])
while True:
    _, body = client.brpop("{QUEUE}")
    if body.startswith(b"rt"):
        client.lpush("{REPLIES}", body)
    else:
        client.incr("{DONE}")
"""
client = redis.Redis.from_url(URL)


def send(_i: int) -> None:
    client.lpush(QUEUE, BODY)


def send_many(calls: range) -> None:
    pipe = client.pipeline(transaction=False)
    for _ in calls:
        pipe.lpush(QUEUE, BODY)
    pipe.execute()


def consumers(processes: int = 2) -> list[harness.Command]:
    return [harness.Command([sys.executable, "-c", CONSUMER, URL]) for _ in range(processes)]


def done() -> int:
    return int(client.get(DONE) or 0)


def call(i: int) -> None:
    client.lpush(QUEUE, b"rt%d" % i)
    if client.brpop(REPLIES, timeout=30) is None:
        raise TimeoutError("raw round trip: no reply within 30 s")


def enqueue(o: harness.Options) -> dict[str, float]:
    return harness.enqueue_rate(send, o.tasks)


def bulk(o: harness.Options) -> dict[str, float]:
    return harness.bulk_rate(send_many, o.tasks)


def processing(o: harness.Options) -> dict[str, float]:
    client.delete(QUEUE, DONE)
    for start in range(0, o.tasks, harness.BATCH):
        client.lpush(QUEUE, *([BODY] * min(harness.BATCH, o.tasks - start)))
    return harness.processing_rate(consumers(), done, o.tasks, budget_s=o.budget_s)


def round_trip(o: harness.Options) -> dict[str, float]:
    client.delete(QUEUE, REPLIES)
    return harness.round_trip_ms(consumers(), call, o.round_trips)


def memory(o: harness.Options) -> dict[str, float]:
    return harness.memory_mb_per_10k(send, o.memory_sends)


def floor(o: harness.Options) -> dict[str, float]:
    """``redis-benchmark`` LPUSH requests/s: 1 client, 50 clients (its default), pipelined."""
    return {
        "lpush_1_client_per_s": redis_benchmark("-c", "1"),
        "lpush_50_clients_per_s": redis_benchmark("-c", "50"),
        "lpush_1_client_pipeline_1000_per_s": redis_benchmark("-c", "1", "-P", "1000"),
    }


def redis_benchmark(*options: str, requests: int = 100_000) -> float:
    where = urlsplit(URL)
    argv = ["redis-benchmark", "-h", where.hostname or "127.0.0.1", "-p", str(where.port),
            "-n", str(requests), "-t", "lpush", "--csv", *options]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=300).stdout
    for line in out.splitlines():
        cells = [cell.strip('"') for cell in line.split(",")]
        if cells[0].startswith("LPUSH"):
            return float(cells[1])
    raise RuntimeError(f"redis-benchmark printed no LPUSH line: {out!r}")
