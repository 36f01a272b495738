"""`make demo`: a 2-process worker, 2,000 tasks, a results table, and nothing left behind.

Runs on the embedded SQLite broker in a temporary directory. Exits 0 only if
every task reached the state it should and no process is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

HERE = Path(__file__).resolve().parent
console = Console()

KINDS = 20  # of every 20 tasks: 16 square, 2 digest, 1 flaky, 1 doomed (every 5th block)


def plan(total: int) -> list[tuple[str, int]]:
    """Which task each of the ``total`` sends is."""
    calls = []
    for i in range(total):
        slot = i % KINDS
        if slot == 0:
            calls.append(("flaky", i))
        elif slot == 1 and i % 100 == 1:
            calls.append(("doomed", i))
        elif slot in (2, 3):
            calls.append(("digest", i))
        else:
            calls.append(("square", i))
    return calls


def start_worker(workdir: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "corral.cli.main", "worker", "demo_tasks:app", "-c", "2",
         "--log-level", "WARNING", "--grace-s", "10"],
        cwd=workdir,
        env=env,
    )


def marked_processes(marker: str) -> list[int]:
    """Processes that still carry this demo's environment marker."""
    needle = f"CORRAL_DEMO_RUN={marker}".encode()
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                with open(f"/proc/{name}/environ", "rb") as f:
                    if needle in f.read().split(b"\0"):
                        found.append(int(name))
            except OSError:
                pass
    return found


def main(total: int = 2000) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="corral-demo-"))
    marker = workdir.name
    os.environ.update(
        CORRAL_BROKER_URL=f"sqlite:///{workdir}/demo.db",
        CORRAL_DEMO_SCRATCH=str(workdir),
        CORRAL_DEMO_RUN=marker,
        PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    )
    sys.path.insert(0, str(HERE))
    import demo_tasks

    from corral import TaskFailed

    console.print(f"[bold]corral demo[/]: broker {os.environ['CORRAL_BROKER_URL']}")
    worker = start_worker(workdir, dict(os.environ))
    tasks = {name: getattr(demo_tasks, name) for name in ("square", "digest", "flaky", "doomed")}
    started = time.perf_counter()
    calls = plan(total)
    handles = [tasks[name].delay(n) for name, n in calls]
    sent_s = time.perf_counter() - started
    outcomes = {"succeeded": 0, "failed": 0, "bytes": 0}
    with Progress(console=console, transient=False) as progress:
        bar = progress.add_task("results", total=total)
        for handle in handles:
            try:
                value = handle.get(timeout_s=120)
                outcomes["succeeded"] += 1
                outcomes["bytes"] += isinstance(value, bytes)
            except TaskFailed:
                outcomes["failed"] += 1
            progress.advance(bar)
    elapsed_s = time.perf_counter() - started
    dead = demo_tasks.app.broker.dead_letters(limit=total)
    retrying = [name for name, _ in calls if name in ("flaky", "doomed")]
    runs_log = workdir / "retrying-runs.log"
    retries = len(runs_log.read_text().splitlines()) - len(retrying)

    worker.send_signal(signal.SIGTERM)
    code = worker.wait(timeout=30)
    time.sleep(0.2)
    left = marked_processes(marker)

    table = Table(title=f"{total:,} tasks, 2 pool processes, SQLite")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("enqueue (per call)", f"{total / sent_s:,.0f} tasks/s")
    table.add_row("end-to-end throughput", f"{total / elapsed_s:,.0f} tasks/s")
    table.add_row("succeeded", f"{outcomes['succeeded']:,}")
    table.add_row("  of which bytes results", f"{outcomes['bytes']:,}")
    table.add_row("retries", f"{retries:,}")
    table.add_row("failed (after retries)", f"{outcomes['failed']:,}")
    table.add_row("dead letters", f"{len(dead):,}")
    table.add_row("worker exit code after TERM", str(code))
    table.add_row("processes left", str(len(left)))
    console.print(table)

    expected_failed = sum(1 for name, _ in calls if name == "doomed")
    ok = (
        outcomes["failed"] == expected_failed == len(dead)
        and outcomes["succeeded"] == total - expected_failed
        and code == 0
        and not left
    )
    console.print("[bold green]demo OK[/]" if ok else "[bold red]demo FAILED[/]")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
