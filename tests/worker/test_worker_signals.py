"""TERM/INT warm stop, second INT/QUIT cold stop, HUP reload with fresh code."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from corral import TaskState
from tests.helpers.procs import poll_for
from tests.worker.conftest import WorkerEnv

pytestmark = pytest.mark.timeout(120)


def test_warm_stop_finishes_running_task_and_hands_back_the_rest_at_once(wenv: WorkerEnv) -> None:
    w = wenv.start("-c", "1", "--prefetch", "4")
    runs = wenv.path("runs")
    running = wenv.module.count_run.delay(runs, 2.0)
    assert poll_for(lambda: Path(runs).exists(), timeout_s=20)
    waiting = [wenv.module.add.send(args=(i, i), countdown_s=0) for i in range(5)]
    w.signal(signal.SIGTERM)
    assert w.wait() == 0
    assert running.get(timeout_s=1) == "done"  # finished within the grace period
    # The rest were handed back at once, not left leased until their leases expire.
    states = {h.status() for h in waiting}
    assert states <= {TaskState.QUEUED, TaskState.SUCCEEDED}
    stats = {q.queue: q for q in wenv.module.app.broker.queue_stats()}
    assert stats["default"].running == 0


def test_grace_period_over_hands_running_task_back(wenv: WorkerEnv) -> None:
    w = wenv.start("-c", "1", "--grace-s", "1")
    runs = wenv.path("runs")
    handle = wenv.module.count_run.delay(runs, 60.0)
    assert poll_for(lambda: Path(runs).exists(), timeout_s=20)
    w.signal(signal.SIGTERM)
    assert w.wait(timeout_s=15) == 0
    assert "grace period over" in w.log()
    assert handle.status() is TaskState.QUEUED  # deliverable now, not after lease_s


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGQUIT])
def test_second_int_or_quit_is_a_cold_stop(wenv: WorkerEnv, second: int) -> None:
    w = wenv.start("-c", "1", "--grace-s", "60")
    runs = wenv.path("runs")
    handle = wenv.module.count_run.delay(runs, 60.0)
    assert poll_for(lambda: Path(runs).exists(), timeout_s=20)
    w.signal(signal.SIGINT)
    assert poll_for(lambda: "warm stop" in w.log(), timeout_s=10)
    w.signal(second)
    assert w.wait(timeout_s=15) == 0
    assert "cold stop" in w.log()
    assert handle.status() is TaskState.QUEUED


def test_hup_reload_runs_changed_code_and_old_pools_leave(wenv: WorkerEnv) -> None:
    w = wenv.start("-c", "2")
    assert wenv.module.version.delay().get(timeout_s=30) == "v1"
    old_pools = set(w.wait_pools(2))
    source = Path(wenv.workdir / "wapp.py")
    source.write_text(source.read_text().replace('VERSION = "v1"', 'VERSION = "v2"'))
    w.signal(signal.SIGHUP)
    assert poll_for(lambda: not (set(w.pool_pids()) & old_pools), timeout_s=30), w.log()
    results = {wenv.module.version.delay().get(timeout_s=30) for _ in range(10)}
    assert results == {"v2"}
    assert w.stop() == 0


def test_status_tree_marks_old_code_stale_during_a_reload(wenv: WorkerEnv) -> None:
    """P4: a pool process still finishing a task on old code is shown as STALE."""
    import json
    import subprocess
    import sys

    w = wenv.start("-c", "1", "--grace-s", "30")
    runs = wenv.path("runs")
    wenv.module.count_run.delay(runs, 8.0)
    assert poll_for(lambda: Path(runs).exists(), timeout_s=20)
    source = Path(wenv.workdir / "wapp.py")
    source.write_text(source.read_text().replace('VERSION = "v1"', 'VERSION = "v2"'))
    w.signal(signal.SIGHUP)

    def pools() -> list[dict[str, object]]:
        out = subprocess.run(
            [sys.executable, "-m", "corral.cli.main", "status", "wapp:app", "--tree", "--json"],
            cwd=wenv.workdir,
            env=wenv.env,
            capture_output=True,
            check=True,
        ).stdout
        workers = json.loads(out)["workers"]
        return [p for worker in workers for p in worker["pools"]]

    def stale_and_fresh() -> bool:
        found = pools()
        return any(p.get("stale") for p in found) and any(not p.get("stale") for p in found)

    assert poll_for(stale_and_fresh, timeout_s=20)
    old = [p for p in pools() if p.get("stale")]
    assert all(p["generation"] == 1 for p in old)
    assert w.stop() == 0
