"""corral on its embedded SQLite broker, through bench/sqlite.py's own functions (a fresh
database file per workload in the run's working directory, a worker of 2 pool
processes with default containment), beside ``huey_sqlite_bench``.
"""

from __future__ import annotations

import sys

import harness

PACKAGES = ("corral",)
SKIPPED = {"memory": "measured on Redis only"}
# bench_tasks lives in bench/; appended, not prepended, because bench/redis.py would
# shadow redis-py for anything that imports redis.
sys.path.append(str(harness.BENCH_DIR))
S = harness.load_bench_script("sqlite.py", "corral_sqlite_bench_impl")


def enqueue(o: harness.Options) -> dict[str, float]:
    return {"per_s": S.per_call_enqueue(o.workdir, o.tasks)}


def bulk(o: harness.Options) -> dict[str, float]:
    return {"per_s": S.bulk_enqueue(o.workdir, o.tasks, batch=harness.BATCH)}


def processing(o: harness.Options) -> dict[str, float]:
    return {"per_s": S.processing(o.workdir, o.tasks)}


def round_trip(o: harness.Options) -> dict[str, float]:
    p50, p99 = S.round_trip(o.workdir, o.round_trips)
    return {"p50_ms": p50, "p99_ms": p99}
