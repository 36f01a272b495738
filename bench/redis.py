"""Redis end-to-end benchmark, beside a raw redis-py floor measured in the same run.

    .venv/bin/python bench/redis.py [--tasks 20000] [--round-trips 500] [--profile FILE]

Starts a private redis-server on a free port (never 127.0.0.1:6379) and measures:
per-call enqueue (``delay``), bulk enqueue (``send_many`` of 1,000), processing with
a worker of 2 pool processes (``--tasks`` queued no-op tasks, timed from the first
done), round trip p50/p99 (sequential send + get) and the client's RSS growth per
10,000 sends (fresh process, after a warm-up). The floors: ``LPUSH`` per call,
pipelined ``LPUSH`` (batches of 1,000) and a ``BRPOP`` + ``INCR`` consumer loop in
2 processes. Enqueue figures and their floors are timed in alternating rounds (the
machine's other load weighs on both alike). Each figure uses its own key prefix on
the same server. Prints one JSON object and a table. ``--profile FILE`` records the
worker main with py-spy during the processing run (collapsed stacks, for
``flamegraph.pl`` or reading).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# This file is called redis.py: with its folder on the path, "import redis" would import
# it instead of redis-py. The folder leaves the path, and bench_tasks is copied elsewhere.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
TASKS_DIR = Path(tempfile.mkdtemp(prefix="corral-bench-redis-"))
shutil.copy(HERE / "bench_tasks.py", TASKS_DIR)
sys.path[:0] = [str(TASKS_DIR), str(REPO), str(REPO / "src")]

import redis  # noqa: E402
from tests.helpers.redis_server import running_redis  # noqa: E402

BODY = b'["bench_tasks.noop",[1],{}]'
BATCH = 1000
RAW_CONSUMER = """
import sys, redis
r = redis.Redis.from_url(sys.argv[1])
while r.brpop("raw:q", timeout=1) is not None:
    r.incr("raw:done")
"""


def child_env(url: str) -> dict[str, str]:
    path = os.pathsep.join([str(TASKS_DIR), str(REPO), str(REPO / "src")])
    return dict(os.environ, CORRAL_BROKER_URL=url, PYTHONPATH=path)


def fresh_app(url: str) -> Any:
    """``bench_tasks`` imported anew against ``url`` (its app reads the env at import)."""
    os.environ["CORRAL_BROKER_URL"] = url
    sys.modules.pop("bench_tasks", None)
    import bench_tasks

    return bench_tasks


def start_worker(url: str, concurrency: int = 2) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "corral.cli.main", "worker", "bench_tasks:app",
               "-c", str(concurrency), "--log-level", "WARNING"]  # fmt: skip
    return subprocess.Popen(command, env=child_env(url), cwd=TASKS_DIR)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)


def timed_from_first(n: int, done: Callable[[], int], poll_s: float = 0.02) -> float:
    """Items per second, from the first one done until ``n`` are done."""
    while done() == 0:
        time.sleep(0.001)
    started, first = time.perf_counter(), done()
    while (count := done()) < n:
        time.sleep(poll_s)
    return (count - first) / (time.perf_counter() - started)


# -- corral --------------------------------------------------------------------------------
def interleaved(
    ours: Callable[[int], None], floor: Callable[[int], None], n: int, rounds: int = 10
) -> tuple[float, float]:
    """Rates of two loops timed in alternating rounds, so that load from elsewhere on
    the machine (and server warm-up) weighs on both alike."""
    spent = [0.0, 0.0]
    chunk = max(1, n // rounds)
    for _ in range(rounds):
        for side, run in enumerate((ours, floor)):
            started = time.perf_counter()
            run(chunk)
            spent[side] += time.perf_counter() - started
    return chunk * rounds / spent[0], chunk * rounds / spent[1]


def per_call_enqueue(url: str) -> Callable[[int], None]:
    tasks = fresh_app(f"{url}?key_prefix=percall")
    tasks.noop.delay(0)  # connect and load the scripts outside the timing

    def run(count: int) -> None:
        for i in range(count):
            tasks.noop.delay(i)

    return run


def bulk_enqueue(url: str) -> Callable[[int], None]:
    tasks = fresh_app(f"{url}?key_prefix=bulk")
    tasks.noop.delay(0)

    def run(count: int) -> None:
        for start in range(0, count, BATCH):
            tasks.noop.send_many([((i,), {}) for i in range(start, min(count, start + BATCH))])

    return run


def processing(url: str, n: int, profile: Path | None) -> float:
    prefixed = f"{url}?key_prefix=processing"
    tasks = fresh_app(prefixed)
    for start in range(0, n, BATCH):
        tasks.noop.send_many([((i,), {}) for i in range(start, min(n, start + BATCH))])
    broker = tasks.app.broker

    def done() -> int:
        return n - sum(q.ready + q.scheduled + q.running for q in broker.queue_stats())

    worker = start_worker(prefixed)
    spy = start_profile(worker.pid, profile) if profile else None
    try:
        return timed_from_first(n, done)
    finally:
        stop(worker)
        if spy is not None:
            spy.wait(timeout=60)


def start_profile(pid: int, output: Path) -> subprocess.Popen[bytes]:
    py_spy = Path(sys.executable).with_name("py-spy")
    command = [str(py_spy), "record", "--pid", str(pid), "--format", "raw",
               "--output", str(output), "--nonblocking", "--duration", "30"]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def round_trip(url: str, n: int) -> tuple[float, float]:
    prefixed = f"{url}?key_prefix=roundtrip"
    tasks = fresh_app(prefixed)
    worker = start_worker(prefixed)
    try:
        tasks.noop.delay(0).get(timeout_s=60)  # the worker is ready
        samples = []
        for i in range(n):
            started = time.perf_counter()
            tasks.noop.delay(i).get(timeout_s=30)
            samples.append((time.perf_counter() - started) * 1000)
        return statistics.median(samples), statistics.quantiles(samples, n=100)[98]
    finally:
        stop(worker)


def client_mb_per_10k(url: str) -> float:
    command = [sys.executable, "-m", "tests.apps.send_forever", f"{url}?key_prefix=memory",
               "5000", "10000", "rss"]  # fmt: skip
    run = subprocess.run(
        command, cwd=REPO, env=child_env(url), capture_output=True, text=True, check=True
    )
    report = json.loads(run.stdout)
    return (int(report["after"]) - int(report["before"])) / (1 << 20)


# -- the raw redis-py floor ----------------------------------------------------------------
def raw_lpush_per_call(client: redis.Redis) -> Callable[[int], None]:
    def run(count: int) -> None:
        for _ in range(count):
            client.lpush("raw:percall", BODY)

    return run


def raw_lpush_pipelined(client: redis.Redis) -> Callable[[int], None]:
    def run(count: int) -> None:
        for start in range(0, count, BATCH):
            pipe = client.pipeline(transaction=False)
            for _ in range(start, min(count, start + BATCH)):
                pipe.lpush("raw:bulk", BODY)
            pipe.execute()

    return run


def raw_consumers(client: redis.Redis, url: str, n: int, processes: int = 2) -> float:
    for start in range(0, n, BATCH):
        client.lpush("raw:q", *([BODY] * min(BATCH, n - start)))
    consumers = [
        subprocess.Popen([sys.executable, "-c", RAW_CONSUMER, url]) for _ in range(processes)
    ]
    try:
        return timed_from_first(n, lambda: int(client.get("raw:done") or 0))
    finally:
        for consumer in consumers:
            consumer.wait(timeout=60)


# -- report --------------------------------------------------------------------------------
def measure(url: str, args: argparse.Namespace) -> dict[str, float]:
    client = redis.Redis.from_url(url)
    n = args.tasks
    per_call = interleaved(per_call_enqueue(url), raw_lpush_per_call(client), n)
    bulk = interleaved(bulk_enqueue(url), raw_lpush_pipelined(client), n * 5, rounds=5)
    results = {
        "per_call_enqueue_per_s": per_call[0],
        "raw_lpush_per_call_per_s": per_call[1],
        "bulk_enqueue_per_s": bulk[0],
        "raw_lpush_pipelined_per_s": bulk[1],
        "processing_per_s": processing(url, n, args.profile),
        "raw_brpop_incr_2_processes_per_s": raw_consumers(client, url, n),
    }
    p50, p99 = round_trip(url, args.round_trips)
    results |= {"round_trip_p50_ms": p50, "round_trip_p99_ms": p99}
    results["client_mb_per_10k_sends"] = client_mb_per_10k(url)
    client.close()
    return {key: round(value, 3 if "ms" in key or "mb" in key else None) for key, value in
            results.items()}  # fmt: skip


def print_table(results: dict[str, float]) -> None:
    pairs = [("per-call enqueue /s", "per_call_enqueue_per_s", "raw_lpush_per_call_per_s"),
             ("bulk enqueue /s", "bulk_enqueue_per_s", "raw_lpush_pipelined_per_s"),
             ("processing /s (2 procs)", "processing_per_s", "raw_brpop_incr_2_processes_per_s"),
             ("round trip p50 ms", "round_trip_p50_ms", None),
             ("round trip p99 ms", "round_trip_p99_ms", None),
             ("client MB / 10k sends", "client_mb_per_10k_sends", None)]  # fmt: skip
    print(f"{'':<26}{'corral':>12}{'raw floor':>12}{'ratio':>8}")
    for label, ours, floor in pairs:
        line = f"{label:<26}{results[ours]:>12,}"
        if floor is not None:
            line += f"{results[floor]:>12,}{results[ours] / results[floor]:>8.0%}"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--round-trips", type=int, default=500)
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args()
    try:
        with running_redis() as server:
            results = measure(server.url, args)
    finally:
        shutil.rmtree(TASKS_DIR, ignore_errors=True)
    print(json.dumps(results))
    print_table(results)


if __name__ == "__main__":
    main()
