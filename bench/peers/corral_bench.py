"""corral on Redis, through bench/redis.py's own helpers (its app, worker environment and
enqueue loops), so that this table and that benchmark measure the same thing.

Worker: ``corral worker -c 2`` with ``--containment`` from the driver (``cgroup`` or
``subreaper``), or with ``off`` the same worker with its protections taken out by
corral_unprotected.py (corral itself has no such switch).
Bulk: ``send_many``. Done: the broker's queue statistics (ready + scheduled + running
is zero only once every task was acknowledged, after it ran). Memory: the client of
tests/apps/send_forever.py (results never read).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
from typing import Any

import harness

PACKAGES = ("corral", "redis")
URL = os.environ["BENCH_REDIS_URL"]  # set by run.py before import (see its docstring)


R = harness.load_bench_script("redis.py", "corral_redis_bench")
atexit.register(shutil.rmtree, R.TASKS_DIR, ignore_errors=True)


def worker(url: str, containment: str) -> list[harness.Command]:
    """``corral worker -c 2``; with containment ``off``, through corral_unprotected.py."""
    options = ["worker", "bench_tasks:app", "-c", "2", "--log-level", "WARNING"]
    if containment == "off":
        argv = [sys.executable, str(harness.PEERS_DIR / "corral_unprotected.py"), *options]
    else:
        argv = [sys.executable, "-m", "corral.cli.main", *options, "--containment", containment]
    return [harness.Command(argv, env=R.child_env(url), cwd=R.TASKS_DIR)]


def queued(prefix: str, n: int) -> Any:
    """The bench_tasks module on a key prefix, with ``n`` no-op tasks queued."""
    tasks = R.fresh_app(f"{URL}?key_prefix={prefix}")
    for start in range(0, n, harness.BATCH):
        tasks.noop.send_many([((i,), {}) for i in range(start, min(n, start + harness.BATCH))])
    return tasks


def enqueue(o: harness.Options) -> dict[str, float]:
    run = R.per_call_enqueue(URL)
    return {"per_s": harness.elapsed_rate(o.tasks, lambda: run(o.tasks))}


def bulk(o: harness.Options) -> dict[str, float]:
    run = R.bulk_enqueue(URL)
    return {"per_s": harness.elapsed_rate(o.tasks, lambda: run(o.tasks))}


def processing(o: harness.Options) -> dict[str, float]:
    broker = queued("processing", o.tasks).app.broker

    def done() -> int:
        return o.tasks - sum(q.ready + q.scheduled + q.running for q in broker.queue_stats())

    commands = worker(f"{URL}?key_prefix=processing", o.containment)
    return harness.processing_rate(commands, done, o.tasks, budget_s=o.budget_s)


def round_trip(o: harness.Options) -> dict[str, float]:
    tasks = queued("roundtrip", 0)
    commands = worker(f"{URL}?key_prefix=roundtrip", o.containment)
    return harness.round_trip_ms(
        commands, lambda i: tasks.noop.delay(i).get(timeout_s=60), o.round_trips
    )


def memory(o: harness.Options) -> dict[str, float]:
    argv = [sys.executable, "-m", "tests.apps.send_forever", f"{URL}?key_prefix=memory",
            str(harness.WARMUP_SENDS), str(o.memory_sends), "rss"]  # fmt: skip
    run = subprocess.run(
        argv, cwd=R.REPO, env=R.child_env(URL), capture_output=True, text=True, check=True
    )
    report = json.loads(run.stdout)
    grown_mb = (int(report["after"]) - int(report["before"])) / (1 << 20)
    return {"mb_per_10k": grown_mb * 10_000 / o.memory_sends}
