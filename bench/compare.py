"""Side-by-side benchmark: corral against Celery, RQ, Dramatiq, Huey and arq, and a raw floor.

    make bench        # builds bench/.venvs/<peer> (pinned), then runs this
    .venv/bin/python bench/compare.py [--tasks 20000] [--round-trips 500] [--repeats 3]
                                      [--protection-repeats 9]
                                      [--only corral,huey,raw] [--workloads processing]
                                      [--budget-s 30] [--output DIR]

Starts one private redis-server on a free port and runs every workload for every
system, one after another in this one run: per-call enqueue, bulk enqueue, processing
(2 worker processes), round trip, client memory, and the floor (raw redis-py and
``redis-benchmark``). corral's processing and round trip also run with
``--containment subreaper`` and with its protections taken out
(bench/peers/corral_unprotected.py: bench only), for what they cost. Each system runs
in its own virtualenv (the peers pin incompatible redis-py versions) through
``bench/peers/run.py``, which prints one JSON line; each has its own Redis database,
flushed before every run. The repeated
workloads are interleaved (repetition 1 of every system, then repetition 2, ...), so
that the machine's other load weighs on all alike. Writes bench/results/results.json
(raw) and bench/results/RESULTS.md (tables, ratios, spread, targets).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEERS = HERE / "peers"
# bench/redis.py would shadow redis-py: this folder leaves the path (see bench/redis.py).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path[:0] = [str(REPO), str(PEERS)]

import redis  # noqa: E402
import report  # noqa: E402
from tests.helpers.procs import marked_pids  # noqa: E402
from tests.helpers.redis_server import running_redis  # noqa: E402

CORRAL_PY = REPO / ".venv" / "bin" / "python"
VENVS = HERE / ".venvs"
RESULTS = HERE / "results"
WORKLOADS = ("enqueue", "bulk", "processing", "round_trip", "memory")
FLOOR = "floor"
ONCE = ("memory",)
PROTECTION_SYSTEMS = ("corral", "corral-subreaper", "corral-off")
MARKER_KEY = "CORRAL_BENCH_RUN"


@dataclass(frozen=True)
class System:
    """One contender: which python runs which module of bench/peers, on which database."""

    key: str
    label: str
    store: str
    kind: str  # "corral", "peer" or "floor"
    python: str
    module: str
    db: int
    containment: str = "auto"
    workloads: tuple[str, ...] = WORKLOADS
    notes: str = ""


def peer_python(name: str) -> str:
    return str(VENVS / name / "bin" / "python")


SYSTEMS = (
    System("corral", "corral", "Redis", "corral", str(CORRAL_PY), "corral_bench", 1,
           containment="cgroup",
           notes="worker -c 2 --containment cgroup (prefetch 4, batched acks and results)"),
    System("corral-subreaper", "corral (subreaper)", "Redis", "corral", str(CORRAL_PY),
           "corral_bench", 2, containment="subreaper", workloads=("processing", "round_trip"),
           notes="the same with --containment subreaper (the fallback without cgroups)"),
    System("corral-off", "corral (protections off)", "Redis", "corral", str(CORRAL_PY),
           "corral_bench", 11, containment="off", workloads=("processing", "round_trip"),
           notes="the same worker with containment, leftover checks, fork guard, orphan "
           "reaping and lease renewal taken out by bench/peers/corral_unprotected.py "
           "(bench only: corral has no such switch)"),
    System("celery", "Celery", "Redis", "peer", peer_python("celery"), "celery_bench", 3,
           notes="worker -c 2 (prefork); result backend on the same Redis"),
    System("rq", "RQ", "Redis", "peer", peer_python("rq"), "rq_bench", 4,
           notes="worker-pool -n 2 (a forked work horse per job, RQ's default)"),
    System("dramatiq", "Dramatiq", "Redis", "peer", peer_python("dramatiq"), "dramatiq_bench",
           5, notes="-p 2 with its default 8 threads each; Results middleware for the round trip"),
    System("huey", "Huey", "Redis", "peer", peer_python("huey"), "huey_bench", 6,
           notes="consumer -w 2 -k process (default: threads); notify_result=True (non-default)"),
    System("arq", "arq", "Redis", "peer", peer_python("arq"), "arq_bench", 7,
           notes="2 worker processes (no multi-process option); round trip polls 10 ms "
           "(non-default, default 0.5 s)"),
    System("raw", "raw redis-py", "Redis", "floor", str(CORRAL_PY), "raw_redis", 8,
           notes="LPUSH per call; pipelined LPUSH; 2 x (BRPOP + INCR) consumers"),
    System("corral-sqlite", "corral (SQLite)", "SQLite", "corral", str(CORRAL_PY),
           "corral_sqlite_bench", 9, workloads=WORKLOADS[:4], notes="worker -c 2"),
    System("huey-sqlite", "Huey (SqliteHuey)", "SQLite", "peer", peer_python("huey"),
           "huey_sqlite_bench", 10, workloads=WORKLOADS[:4],
           notes="consumer -w 2 -k process; deletes a task when taken (at-most-once)"),
)  # fmt: skip


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--round-trips", type=int, default=500)
    parser.add_argument("--memory-sends", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--protection-repeats", type=int, default=9,
                        help="processing runs of corral with and without its protections: "
                             "their cost is a difference of a few percent between noisy "
                             "figures, so it takes more runs than a ranking")  # fmt: skip
    parser.add_argument("--budget-s", type=float, default=30.0,
                        help="longest a processing run is timed (a slower system's rate "
                             "is measured on the tasks it did by then)")  # fmt: skip
    parser.add_argument("--only", default="", help="comma-separated system keys")
    parser.add_argument("--workloads", default="",
                        help=f"comma-separated, of {', '.join((*WORKLOADS, FLOOR))}")  # fmt: skip
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args()


def chosen(args: argparse.Namespace) -> list[System]:
    keys = {key for key in args.only.split(",") if key}
    unknown = keys - {system.key for system in SYSTEMS}
    if unknown:
        valid = ", ".join(system.key for system in SYSTEMS)
        sys.exit(f"--only: unknown system(s) {sorted(unknown)}; valid: {valid}")
    return [system for system in SYSTEMS if not keys or system.key in keys]


def chosen_workloads(args: argparse.Namespace) -> tuple[str, ...]:
    """The workloads to run, in their fixed order (all by default)."""
    names = {name for name in args.workloads.split(",") if name}
    every = (*WORKLOADS, FLOOR)
    unknown = names - set(every)
    if unknown:
        sys.exit(f"--workloads: unknown workload(s) {sorted(unknown)}; valid: {', '.join(every)}")
    return tuple(name for name in every if not names or name in names)


class Bench:
    """One run: the server, the log, the marker every started process carries, the records."""

    def __init__(self, url: str, args: argparse.Namespace, log: Path) -> None:
        self.url, self.args, self.log = url.rsplit("/", 1)[0], args, log
        self.marker = uuid.uuid4().hex
        self.records: list[dict[str, Any]] = []

    def run(self, system: System, workload: str, rep: int) -> dict[str, Any]:
        """Run one workload of one system in its virtualenv; the record also goes to stdout."""
        redis.Redis.from_url(f"{self.url}/{system.db}").flushdb()
        record: dict[str, Any] = {"system": system.key, "workload": workload, "rep": rep}
        started = time.monotonic()
        if not Path(system.python).exists():
            record["skipped"] = f"{system.python} is missing: run `make bench` to build it"
        else:
            record |= self.invoke(system, workload)
        record["elapsed_s"] = round(time.monotonic() - started, 1)
        self.records.append(record)
        print(report.progress_line(system.label, record), flush=True)
        return record

    def invoke(self, system: System, workload: str) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="corral-compare-") as workdir:
            argv = [system.python, str(PEERS / "run.py"), system.module, workload,
                    "--url", f"{self.url}/{system.db}", "--tasks", str(self.args.tasks),
                    "--round-trips", str(self.args.round_trips),
                    "--memory-sends", str(self.args.memory_sends), "--workdir", workdir,
                    "--containment", system.containment,
                    "--budget-s", str(self.args.budget_s)]  # fmt: skip
            env = dict(os.environ, **{MARKER_KEY: self.marker})
            with self.log.open("a") as log:
                log.write(f"\n=== {system.key} {workload}: {' '.join(argv)}\n")
                log.flush()
                done = subprocess.run(
                    argv, env=env, cwd=PEERS, stdout=subprocess.PIPE, stderr=log, text=True,
                    timeout=self.timeout_s(), check=False,
                )  # fmt: skip
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            return {"error": f"exit {done.returncode}; see {self.log.name}"}
        parsed: dict[str, Any] = json.loads(lines[-1])
        return parsed

    def timeout_s(self) -> float:
        return 4 * self.args.budget_s + 600

    def leftovers(self) -> list[int]:
        """Processes of this run still alive (there should be none); they are killed."""
        found = marked_pids(MARKER_KEY, self.marker)
        for pid in found:
            os.kill(pid, signal.SIGKILL)
        return found


def key_report(url: str, systems: list[System]) -> dict[str, list[dict[str, Any]]]:
    """Per Redis system: its key patterns after the round trips, counts, and how many
    have no TTL (what would grow without bound if nothing removed it)."""
    return {system.key: report.key_patterns(redis.Redis.from_url(f"{url}/{system.db}"))
            for system in systems if system.store == "Redis"}  # fmt: skip


def repeats(args: argparse.Namespace, system: System, workload: str) -> int:
    """How many times ``system`` runs ``workload`` (0: not at all)."""
    if workload not in system.workloads:
        return 0
    if workload in ONCE:
        return 1
    if workload == "processing" and system.key in PROTECTION_SYSTEMS:
        return max(args.repeats, args.protection_repeats)
    return int(args.repeats)


def measure(bench: Bench, systems: list[System], workloads: tuple[str, ...]) -> dict[str, Any]:
    keys: dict[str, list[dict[str, Any]]] = {}
    for workload in (w for w in WORKLOADS if w in workloads):
        runs = {system.key: repeats(bench.args, system, workload) for system in systems}
        for rep in range(1, max(runs.values(), default=0) + 1):
            for system in systems:
                if rep <= runs[system.key]:
                    bench.run(system, workload, rep)
        if workload == "round_trip":
            keys = key_report(bench.url, systems)
    floor = [system for system in systems if system.kind == "floor" and FLOOR in workloads]
    for system in floor:
        bench.run(system, FLOOR, 1)
    return keys


def main() -> None:
    args = parse()
    systems = chosen(args)
    workloads = chosen_workloads(args)
    args.output.mkdir(parents=True, exist_ok=True)
    log = args.output / "compare.log"
    log.write_text("")
    started = time.monotonic()
    machine = report.machine()
    with running_redis() as server:
        bench = Bench(server.url, args, log)
        keys = measure(bench, systems, workloads)
        machine["redis_server"] = report.redis_version(server.client())
    leftovers = bench.leftovers()
    results = {
        "machine": machine, "args": {**vars(args), "output": str(args.output)},
        "systems": [asdict(system) for system in systems], "runs": bench.records,
        "keys": keys, "leftover_pids": leftovers,
        "duration_s": round(time.monotonic() - started), "load_after": os.getloadavg(),
    }  # fmt: skip
    (args.output / "results.json").write_text(json.dumps(results, indent=1))
    (args.output / "RESULTS.md").write_text(report.markdown(results))
    print(f"wrote {args.output / 'RESULTS.md'} in {results['duration_s']} s")
    if leftovers:
        sys.exit(f"processes outlived the benchmark and were killed: {leftovers}")


if __name__ == "__main__":
    main()
