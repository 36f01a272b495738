"""SQLite end-to-end benchmark: enqueue per call and in bulk, processing, round trip.

    python bench/sqlite.py [--tasks 20000]

Prints one JSON object and a table. Each figure runs in a fresh database file
in a temporary directory; the worker has 2 pool processes.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def fresh_app(workdir: Path, name: str):  # type: ignore[no-untyped-def]
    os.environ["CORRAL_BROKER_URL"] = f"sqlite:///{workdir}/{name}.db"
    sys.modules.pop("bench_tasks", None)
    import bench_tasks

    return bench_tasks


def start_worker(workdir: Path, concurrency: int = 2) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "corral.cli.main",
            "worker",
            "bench_tasks:app",
            "-c",
            str(concurrency),
            "--log-level",
            "WARNING",
        ],
        cwd=workdir,
        env=env,
    )


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=60)


def per_call_enqueue(workdir: Path, n: int) -> float:
    tasks = fresh_app(workdir, "enqueue")
    tasks.noop.delay(0)  # open the database outside the timing
    started = time.perf_counter()
    for i in range(n):
        tasks.noop.delay(i)
    return n / (time.perf_counter() - started)


def bulk_enqueue(workdir: Path, n: int, batch: int = 1000) -> float:
    tasks = fresh_app(workdir, "bulk")
    tasks.noop.delay(0)
    started = time.perf_counter()
    for start in range(0, n, batch):
        tasks.noop.send_many([((i,), {}) for i in range(start, min(n, start + batch))])
    return n / (time.perf_counter() - started)


def processing(workdir: Path, n: int) -> float:
    tasks = fresh_app(workdir, "processing")
    for start in range(0, n, 1000):
        tasks.noop.send_many([((i,), {}) for i in range(start, min(n, start + 1000))])
    broker = tasks.app.broker
    worker = start_worker(workdir)
    try:
        # Timing starts once the first tasks are done (worker start-up excluded).
        while remaining(broker) == n:
            time.sleep(0.001)
        started = time.perf_counter()
        first = n - remaining(broker)
        while remaining(broker):
            time.sleep(0.01)
        return (n - first) / (time.perf_counter() - started)
    finally:
        stop_worker(worker)


def remaining(broker) -> int:  # type: ignore[no-untyped-def]
    """Messages not yet finished, over every queue."""
    return sum(q.ready + q.scheduled + q.running for q in broker.queue_stats())


def round_trip(workdir: Path, n: int) -> tuple[float, float]:
    tasks = fresh_app(workdir, "roundtrip")
    worker = start_worker(workdir)
    try:
        tasks.noop.delay(0).get(timeout_s=60)  # worker ready
        samples = []
        for i in range(n):
            started = time.perf_counter()
            tasks.noop.delay(i).get(timeout_s=30)
            samples.append((time.perf_counter() - started) * 1000)
        quantiles = statistics.quantiles(samples, n=100)
        return statistics.median(samples), quantiles[98]
    finally:
        stop_worker(worker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--round-trips", type=int, default=500)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    workdir = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    results = {
        "per_call_enqueue_per_s": round(per_call_enqueue(workdir, args.tasks)),
        "bulk_enqueue_per_s": round(bulk_enqueue(workdir, args.tasks * 5)),
        "processing_per_s": round(processing(workdir, args.tasks)),
    }
    p50, p99 = round_trip(workdir, args.round_trips)
    results["round_trip_p50_ms"] = round(p50, 3)
    results["round_trip_p99_ms"] = round(p99, 3)
    print(json.dumps(results))
    for key, value in results.items():
        print(f"{key:>26}  {value:>10,}")


if __name__ == "__main__":
    main()
