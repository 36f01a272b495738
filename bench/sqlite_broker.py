"""Micro benchmark of the SQLite broker alone (no worker, no codec).

    .venv/bin/python bench/sqlite_broker.py [--messages N]

Prints rates for: one send per call, bulk send, the worker's hot path
(reserve a batch + settle it in one batch), and how long a client waiting in
``wait_result`` takes to see a result another connection committed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from corral.brokers.base import Envelope, Settlement
from corral.brokers.sqlite import SqliteBroker
from corral.results import TaskState


def _envelopes(prefix: str, count: int, **options: float) -> list[Envelope]:
    return [
        Envelope(id=f"{prefix}{i}", task="noop", queue="default", body=b'{"args":[]}', **options)  # type: ignore[arg-type]
        for i in range(count)
    ]


def _rate(label: str, count: int, run: Callable[[], object]) -> None:
    started = time.perf_counter()
    run()
    elapsed_s = time.perf_counter() - started
    print(f"{label:<44} {count / elapsed_s:>12,.0f} /s  ({count:,} in {elapsed_s:.2f} s)")


def bench_send_per_call(broker: SqliteBroker, count: int) -> None:
    envelopes = _envelopes("one-", count)

    def send_each() -> None:
        for one in envelopes:
            broker.send([one])

    _rate("send, one envelope per call", count, send_each)


def bench_send_bulk(broker: SqliteBroker, count: int, batch: int = 1000) -> None:
    envelopes = _envelopes("bulk-", count)
    chunks = [envelopes[i : i + batch] for i in range(0, count, batch)]

    def send_chunks() -> None:
        for chunk in chunks:
            broker.send(chunk)

    _rate(f"send, batches of {batch}", count, send_chunks)


def bench_consume(broker: SqliteBroker, count: int, batch: int = 100) -> None:
    def consume() -> None:
        done = 0
        while done < count:
            got = broker.reserve(["default"], batch, owner="bench")
            broker.settle([Settlement(d.id, d.token, TaskState.SUCCEEDED, b"null") for d in got])
            done += len(got)

    _rate(f"reserve({batch}) + settle({batch}) per task", count, consume)


def bench_result_latency(path: Path, rounds: int = 200) -> None:
    client, worker = SqliteBroker(path), SqliteBroker(path)
    latencies_ms: list[float] = []
    for i in range(rounds):
        client.send(_envelopes(f"lat{i}-", 1))
        [got] = worker.reserve(["default"], 1, owner="bench")
        committed: list[float] = []
        waiter = threading.Thread(target=client.wait_result, args=(got.id, 5.0))
        waiter.start()
        time.sleep(0.002)  # let the waiter start waiting, as a real client would be
        worker.settle([Settlement(got.id, got.token, TaskState.SUCCEEDED, b"null")])
        committed.append(time.perf_counter())
        waiter.join()
        latencies_ms.append((time.perf_counter() - committed[0]) * 1000)
    latencies_ms.sort()
    print(
        f"{'wait_result: commit seen after (ms)':<44} median {statistics.median(latencies_ms):.2f}"
        f"  p95 {latencies_ms[int(rounds * 0.95)]:.2f}  max {latencies_ms[-1]:.2f}"
    )
    client.close()
    worker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        broker = SqliteBroker(path)
        broker.send(_envelopes("future-", 100_000, delay_s=3600.0))  # must not slow reserve
        bench_send_per_call(broker, min(args.messages, 20_000))
        bench_send_bulk(broker, args.messages)
        bench_consume(broker, args.messages + min(args.messages, 20_000))
        bench_result_latency(path)
        broker.close()


if __name__ == "__main__":
    main()
