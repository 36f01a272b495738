"""Pool processes that die, a worker main that dies, recycling: nothing is lost."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from corral import TaskState
from corral.errors import TaskFailed
from corral.exitcodes import ExitCode
from tests.helpers.procs import poll_for, wait_gone
from tests.worker.conftest import WorkerEnv

pytestmark = pytest.mark.timeout(120)


def _pid_from(path: str) -> int:
    assert poll_for(lambda: Path(path).exists() and Path(path).read_text() != "", timeout_s=20)
    return int(Path(path).read_text())


def test_pool_process_killed_mid_task_is_replaced_and_task_runs_again(wenv: WorkerEnv) -> None:
    w = wenv.start("-c", "1")
    runs = wenv.path("runs")
    handle = wenv.module.count_run.delay(runs, 1.0)
    assert poll_for(lambda: Path(runs).exists(), timeout_s=20)
    victim = int(Path(runs).read_text().split()[0])
    os.kill(victim, signal.SIGKILL)
    assert handle.get(timeout_s=30) == "done"
    pids = Path(runs).read_text().split()
    assert len(pids) == 2 and pids[1] != pids[0]  # delivered again, to a new pool process
    log = w.log()
    assert "killed by SIGKILL (137)" in log
    assert "delivered again" in log
    assert w.stop() == ExitCode.CHILD_DIED  # never exit 0 after an abnormal child death (P8)


def test_worker_main_sigkill_pools_exit_and_task_runs_again_after_lease(wenv: WorkerEnv) -> None:
    first = wenv.start("-c", "1")
    runs = wenv.path("runs")
    handle = wenv.module.count_run.delay(runs, 30.0)  # lease_s=2
    assert poll_for(lambda: Path(runs).exists(), timeout_s=20)
    pools = first.pool_pids()
    first.signal(signal.SIGKILL)
    first.wait()
    # parent-death signal: the pool process does not outlive its main
    assert wait_gone(lambda: [p for p in pools if _alive(p)], timeout_s=10) == []
    assert handle.status() is TaskState.RUNNING  # still leased until the lease expires
    second = wenv.start("-c", "1", "--grace-s", "0.5")
    assert poll_for(lambda: len(Path(runs).read_text().split()) == 2, timeout_s=30)
    assert second.stop() == 0


def test_poison_message_ends_in_dead_letters_after_max_deliveries(wenv: WorkerEnv) -> None:
    runs = wenv.path("runs")
    handle = wenv.module.count_run.send(args=(runs, 30.0))
    w = wenv.start("-c", "1")
    for attempt in range(1, 6):  # max_deliveries defaults to 5
        assert poll_for(lambda a=attempt: _count(runs) >= a, timeout_s=30), w.log()
        os.kill(int(Path(runs).read_text().split()[-1]), signal.SIGKILL)
    assert poll_for(lambda: handle.status() is TaskState.DEAD, timeout_s=30), w.log()
    [letter] = wenv.module.app.broker.dead_letters()
    assert "without finishing" in letter.reason
    # No task raised, so no error was stored: the caller is told what happened instead
    # of a decode error about an empty payload.
    with pytest.raises(TaskFailed, match="died on every delivery") as failed:
        handle.get(timeout_s=5)
    assert failed.value.type_name == "WorkerLost"
    w.stop()


def test_max_tasks_per_child_recycles_pool_processes(wenv: WorkerEnv) -> None:
    w = wenv.start("-c", "1", "--max-tasks-per-child", "3")
    pids = [wenv.module.my_pid.delay().get(timeout_s=30) for _ in range(9)]
    assert len(set(pids)) == 3, str(pids)
    assert [pids[i : i + 3] for i in (0, 3, 6)] == [[p] * 3 for p in dict.fromkeys(pids)]
    assert w.stop() == 0


def test_max_memory_per_child_replaces_the_process(wenv: WorkerEnv) -> None:
    w = wenv.start("-c", "1", "--max-memory-per-child-mb", "120")
    first = wenv.module.hoard.delay(150).get(timeout_s=30)
    second = wenv.module.my_pid.delay().get(timeout_s=30)
    assert first != second
    assert w.stop() == 0


def _count(path: str) -> int:
    return len(Path(path).read_text().split()) if Path(path).exists() else 0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rindex(b")") + 2 :].split()[0] != b"Z"
