"""Micro benchmark of the SQLite broker alone (no worker, no codec).

    .venv/bin/python bench/sqlite_broker.py [--messages N]

Prints rates for: one send per call, bulk send (ids generated for the send, as
the app's, then caller-chosen ids, which every send checks), the worker's hot path
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
from corral.ids import new_task_ids
from corral.results import TaskState


def _envelopes(prefix: str, count: int, **options: float) -> list[Envelope]:
    """Envelopes with caller-chosen ids: every send checks them (idempotency)."""
    return [
        Envelope(id=f"{prefix}{i}", task="noop", queue="default", body=b'{"args":[]}', **options)  # type: ignore[arg-type]
        for i in range(count)
    ]


def _fresh_envelopes(count: int, batch: int) -> list[Envelope]:
    """Envelopes with ids generated for the send (``new_id``), as the app sends them:
    each batch of ids a millisecond later than the one before (ids are time-ordered)."""
    ids: list[str] = []
    for start in range(0, count, batch):
        time.sleep(0.001)
        ids += new_task_ids(min(batch, count - start))
    return [
        Envelope(id=task_id, task="noop", queue="default", body=b'["noop",[1],{}]', new_id=True)
        for task_id in ids
    ]


def _rate(label: str, count: int, run: Callable[[], object]) -> None:
    started = time.perf_counter()
    run()
    elapsed_s = time.perf_counter() - started
    print(f"{label:<44} {count / elapsed_s:>12,.0f} /s  ({count:,} in {elapsed_s:.2f} s)")


def bench_send_per_call(broker: SqliteBroker, count: int) -> None:
    envelopes = _fresh_envelopes(count, batch=100)

    def send_each() -> None:
        for one in envelopes:
            broker.send([one])

    _rate("send, one envelope per call", count, send_each)


def bench_send_bulk(
    broker: SqliteBroker, envelopes: list[Envelope], label: str, batch: int = 1000
) -> None:
    chunks = [envelopes[i : i + batch] for i in range(0, len(envelopes), batch)]

    def send_chunks() -> None:
        for chunk in chunks:
            broker.send(chunk)

    _rate(f"send, batches of {batch}{label}", len(envelopes), send_chunks)


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
        bench_send_bulk(broker, _fresh_envelopes(args.messages, batch=1000), "")
        bench_send_bulk(broker, _envelopes("chosen-", args.messages), ", caller-chosen ids")
        bench_consume(broker, 2 * args.messages + min(args.messages, 20_000))
        bench_result_latency(path)
        broker.close()


if __name__ == "__main__":
    main()
