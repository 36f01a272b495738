"""What every system's benchmark module shares: the workload timings and worker processes.

Standard library only: this file runs in every peer's virtualenv. A system module
(``celery_bench``, ``rq_bench``, ...) gives the primitives (send one, send many, the
worker command, how many tasks are done, one call and its result) and these helpers
turn them into the same five figures for everyone:

- ``enqueue_rate``: sends per second from one client, one call each;
- ``bulk_rate``: sends per second through the system's many-at-once API, batches of 1,000;
- ``processing_rate``: tasks per second from the first done until all ``n`` are done,
  and the CPU the worker processes spent per task meanwhile;
- ``round_trip_ms``: p50 and p99 of sequential send-then-wait-for-the-result;
- ``memory_mb_per_10k``: the client's RSS growth per 10,000 sends, results never read.

Every worker starts in its own process group, and the runner is a child subreaper, so
that stopping a worker can wait until its whole tree is gone and reap every zombie.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

BATCH = 1000
WARMUP_SENDS = 5000
WARMUP_CALLS = 20
POLL_S = 0.01
PR_SET_CHILD_SUBREAPER = 36
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PEERS_DIR = Path(__file__).resolve().parent
BENCH_DIR = PEERS_DIR.parent


@dataclass(frozen=True)
class Options:
    """What the driver asks of one run (``run.py`` builds it from the command line)."""

    url: str
    tasks: int
    round_trips: int
    memory_sends: int
    workdir: Path
    containment: str
    budget_s: float


@dataclass(frozen=True)
class Command:
    """One worker process to start: its argv, extra environment and directory."""

    argv: list[str]
    env: dict[str, str] | None = None
    cwd: Path | None = None


def load_bench_script(filename: str, name: str) -> ModuleType:
    """A script of bench/ (corral's own benchmarks) imported as module ``name``: its
    helpers are reused here, its main is not run."""
    spec = importlib.util.spec_from_file_location(name, BENCH_DIR / filename)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def elapsed_rate(count: int, run: Callable[[], object]) -> float:
    """``count`` divided by the seconds ``run`` takes."""
    started = time.perf_counter()
    run()
    return count / (time.perf_counter() - started)


def enqueue_rate(send: Callable[[int], object], n: int) -> dict[str, float]:
    """Per-call sends per second; the first send (connect, load scripts) is not timed."""
    send(0)

    def run() -> None:
        for i in range(n):
            send(i)

    return {"per_s": elapsed_rate(n, run)}


def bulk_rate(send_many: Callable[[range], object], n: int) -> dict[str, float]:
    """Sends per second through ``send_many`` in batches of ``BATCH``."""
    send_many(range(1))

    def run() -> None:
        for start in range(0, n, BATCH):
            send_many(range(start, min(n, start + BATCH)))

    return {"per_s": elapsed_rate(n, run)}


def processing_rate(
    commands: list[Command], done: Callable[[], int], n: int, *, budget_s: float
) -> dict[str, float]:
    """Start the workers on ``n`` queued tasks; tasks per second from the first done, and
    the CPU time of the workers' process trees per task over the same time."""
    workers = [start(command) for command in commands]

    def done_while_running() -> int:
        if all(worker.poll() is not None for worker in workers):
            codes = [worker.returncode for worker in workers]
            raise RuntimeError(f"every worker exited (codes {codes}) before the tasks were done")
        return done()

    def cpu_s() -> float:
        return tree_cpu_s(worker.pid for worker in workers)

    try:
        return timed_from_first(n, done_while_running, budget_s=budget_s, cpu_s=cpu_s)
    finally:
        stop_all(workers)


def timed_from_first(
    n: int, done: Callable[[], int], *, budget_s: float, cpu_s: Callable[[], float]
) -> dict[str, float]:
    """Items per second from the first one done (worker start-up excluded) until ``n`` are,
    or until ``budget_s`` passed: a slow system's steady rate is measured on what it did.
    ``cpu_s`` (the workers' CPU seconds so far) gives the CPU microseconds per item."""
    deadline = time.monotonic() + budget_s
    while (first := done()) == 0:
        check_deadline(deadline, "no task was done")
        time.sleep(0.001)
    started = time.perf_counter()
    cpu_before_s = cpu_s()
    deadline = time.monotonic() + budget_s
    while (count := done()) < n and time.monotonic() < deadline:
        time.sleep(POLL_S)
    elapsed_s = time.perf_counter() - started
    cpu_used_s = cpu_s() - cpu_before_s
    timed = count - first
    return {"per_s": timed / elapsed_s, "timed_tasks": timed, "timed_s": elapsed_s,
            "all_done": float(count >= n),
            "cpu_us_per_task": cpu_used_s * 1e6 / timed if timed else 0.0}  # fmt: skip


def check_deadline(deadline: float, progress: str) -> None:
    if time.monotonic() > deadline:
        raise TimeoutError(f"gave up at the deadline: {progress}")


def round_trip_ms(
    commands: list[Command], call: Callable[[int], object], n: int
) -> dict[str, float]:
    """p50 and p99 of ``n`` sequential calls after ``WARMUP_CALLS`` untimed ones (the
    first waits for the workers to start); the slowest warm-up call is reported too."""
    workers = [start(command) for command in commands]
    try:
        call(-1)
        warmup = [timed_call_ms(call, i) for i in range(WARMUP_CALLS)]
        samples = [timed_call_ms(call, i) for i in range(n)]
        return {"p50_ms": statistics.median(samples),
                "p99_ms": statistics.quantiles(samples, n=100)[98],
                "warmup_max_ms": max(warmup)}  # fmt: skip
    finally:
        stop_all(workers)


def timed_call_ms(call: Callable[[int], object], i: int) -> float:
    started = time.perf_counter()
    call(i)
    return (time.perf_counter() - started) * 1000


def memory_mb_per_10k(send: Callable[[int], object], count: int) -> dict[str, float]:
    """RSS growth per 10,000 sends over ``count`` sends, after ``WARMUP_SENDS``."""
    for i in range(WARMUP_SENDS):
        send(i)
    before = rss_bytes()
    for i in range(count):
        send(i)
    return {"mb_per_10k": (rss_bytes() - before) / (1 << 20) * 10_000 / count}


def tree_cpu_s(roots: Iterable[int]) -> float:
    """User + system CPU seconds of ``roots`` and all their live descendants, including
    what their reaped children used (/proc/PID/stat, in clock ticks of 10 ms)."""
    parent_of: dict[int, int] = {}
    cpu_of: dict[int, float] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (stat := cpu_stat(int(name))) is not None:
            parent_of[int(name)], cpu_of[int(name)] = stat
    children: dict[int, list[int]] = {}
    for pid, parent in parent_of.items():
        children.setdefault(parent, []).append(pid)
    total_s, stack, seen = 0.0, list(roots), set()
    while stack:
        pid = stack.pop()
        if pid not in seen:
            seen.add(pid)
            total_s += cpu_of.get(pid, 0.0)
            stack.extend(children.get(pid, ()))
    return total_s


def cpu_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, utime + stime + cutime + cstime in seconds); None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2 :].split()  # fields from the 3rd (state) on
    return int(fields[1]), sum(int(ticks) for ticks in fields[11:15]) / CLOCK_TICKS


def rss_bytes() -> int:
    """This process's current resident set size (not its peak)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# -- worker processes ----------------------------------------------------------------------
def become_subreaper() -> None:
    """Orphans of the workers re-parent to this process, which reaps them in ``stop``."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def start(command: Command) -> subprocess.Popen[bytes]:
    """Start one worker in its own process group, its output to the run's log file."""
    env = {**os.environ, "PYTHONPATH": pythonpath(), **(command.env or {})}
    return subprocess.Popen(
        command.argv, env=env, cwd=command.cwd or PEERS_DIR, start_new_session=True,
        stdin=subprocess.DEVNULL, stdout=sys.stderr, stderr=sys.stderr,
    )  # fmt: skip


def pythonpath() -> str:
    return os.pathsep.join(filter(None, [str(PEERS_DIR), os.environ.get("PYTHONPATH")]))


def stop_all(workers: Iterable[subprocess.Popen[bytes]], *, grace_s: float = 30.0) -> None:
    """Warm-stop every worker (SIGTERM), then wait until each whole process group is gone."""
    workers = list(workers)
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        stop_group(worker, grace_s=grace_s)


def stop_group(worker: subprocess.Popen[bytes], *, grace_s: float) -> None:
    """Wait for the worker, then for its process group to empty; SIGKILL what outstays."""
    try:
        worker.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        print(f"worker {worker.pid} outstayed {grace_s} s; killing its group", file=sys.stderr)
        kill_group(worker.pid)
        worker.wait(timeout=grace_s)
    deadline = time.monotonic() + grace_s
    while group_alive(worker.pid):
        reap_orphans()
        if time.monotonic() > deadline:
            kill_group(worker.pid)
        time.sleep(POLL_S)


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def group_alive(pgid: int) -> bool:
    """True while any process, zombies included, is in the group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def reap_orphans() -> None:
    """Reap the exited orphans that re-parented to this subreaper."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
