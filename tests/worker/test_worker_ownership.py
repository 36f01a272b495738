"""Process ownership in the worker (P2-P5): trees, leftovers, limits, fork guard, reaping."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from corral import TaskFailed, TaskRevoked, TaskState, TimeLimitExceeded
from tests.helpers.procs import poll_for, state_of, wait_gone, zombies_under
from tests.worker.conftest import WorkerEnv

pytestmark = pytest.mark.timeout(120)


def _pid_in(path: str) -> int:
    assert poll_for(lambda: Path(path).exists() and Path(path).read_text().strip(), timeout_s=20)
    return int(Path(path).read_text())


def _alive(pid: int) -> bool:
    return state_of(pid) not in ("", "Z")


def test_subprocess_in_a_task_keeps_its_exit_status(wenv: WorkerEnv) -> None:
    wenv.start("-c", "1")
    assert wenv.module.exit_status_of_subprocess.delay().get(timeout_s=30) == 7


def test_leftovers_are_killed_by_default_and_named_in_the_log(wenv: WorkerEnv) -> None:
    w = wenv.start("-c", "1")
    pid_file = wenv.path("sleeper")
    assert wenv.module.orphan_sleeper.delay(pid_file).get(timeout_s=30) == "left a sleeper"
    sleeper = _pid_in(pid_file)
    assert wait_gone(lambda: [sleeper] if _alive(sleeper) else [], timeout_s=10) == []
    log = w.log()
    assert "wapp.orphan_sleeper left processes running" in log
    assert "sleep 300" in log
    assert w.stop() == 0


def test_leftovers_warn_keeps_them_until_the_worker_stops(wenv: WorkerEnv) -> None:
    w = wenv.start("-c", "1")
    pid_file = wenv.path("sleeper")
    wenv.module.orphan_sleeper_warn.delay(pid_file).get(timeout_s=30)
    sleeper = _pid_in(pid_file)
    assert poll_for(lambda: "leftovers='warn'" in w.log(), timeout_s=10)
    assert _alive(sleeper)
    assert w.stop() == 0
    assert not _alive(sleeper)  # stopped means the whole tree is gone


def test_leftovers_keep_is_silent_but_still_contained(wenv: WorkerEnv) -> None:
    w = wenv.start("-c", "1")
    pid_file = wenv.path("sleeper")
    wenv.module.orphan_sleeper_keep.delay(pid_file).get(timeout_s=30)
    sleeper = _pid_in(pid_file)
    assert _alive(sleeper)
    assert "left processes running" not in w.log()
    assert w.stop() == 0
    assert not _alive(sleeper)


def test_hard_time_limit_kills_the_whole_task_tree(wenv: WorkerEnv) -> None:
    w = wenv.start("-c", "1")
    pid_file = wenv.path("sleeper")
    handle = wenv.module.tree_then_hang.delay(pid_file)
    sleeper = _pid_in(pid_file)
    with pytest.raises(TimeLimitExceeded):
        handle.get(timeout_s=30)
    assert wait_gone(lambda: [sleeper] if _alive(sleeper) else [], timeout_s=10) == []
    assert w.stop() == 0


def test_revoke_terminate_kills_the_whole_task_tree(wenv: WorkerEnv) -> None:
    w = wenv.start("-c", "1")
    pid_file = wenv.path("sleeper")
    handle = wenv.module.tree_then_sleep.delay(pid_file, 60.0)
    sleeper = _pid_in(pid_file)
    assert handle.revoke(terminate=True)
    with pytest.raises(TaskRevoked):
        handle.get(timeout_s=30)
    assert wait_gone(lambda: [sleeper] if _alive(sleeper) else [], timeout_s=10) == []
    assert w.stop() == 0


def test_warm_stop_past_grace_kills_the_whole_task_tree(wenv: WorkerEnv) -> None:
    w = wenv.start("-c", "1", "--grace-s", "1")
    pid_file = wenv.path("sleeper")
    handle = wenv.module.tree_then_sleep.delay(pid_file, 60.0)
    sleeper = _pid_in(pid_file)
    w.signal(signal.SIGTERM)
    assert w.wait(timeout_s=20) == 0
    assert not _alive(sleeper)
    assert handle.status() is TaskState.QUEUED


def test_worker_main_sigkilled_its_tree_is_reclaimed_or_shown_escaped(wenv: WorkerEnv) -> None:
    """Negative control: killing only the worker (what Celery's hard limit does to a pool
    process) leaves the setsid'd grandchild running (shown with the fallback, where
    nothing reclaims it). The protection: with cgroups the next worker start on the
    machine kills it (any worker: with xdist it may be another test's), with the
    fallback `corral status --tree` lists it as escaped."""
    w = wenv.start("-c", "1")
    pid_file = wenv.path("sleeper")
    wenv.module.tree_then_sleep.delay(pid_file, 60.0)
    sleeper = _pid_in(pid_file)
    pools = [p for p in w.pool_pids() if p != sleeper]  # the orphan re-parented to the main
    w.signal(signal.SIGKILL)  # nobody left to kill the tree
    w.wait()
    try:
        assert wait_gone(lambda: [p for p in pools if _alive(p)], timeout_s=10) == []
        if wenv.containment == "cgroup":
            second = wenv.start("-c", "1", "--grace-s", "0.5")
            assert wait_gone(lambda: [sleeper] if _alive(sleeper) else [], timeout_s=20) == []
            second.stop()
        else:
            assert _alive(sleeper)  # the grandchild outlived its pool process and worker
            assert sleeper in _escaped_pids(wenv)
    finally:
        if _alive(sleeper):
            os.kill(sleeper, signal.SIGKILL)


def _escaped_pids(wenv: WorkerEnv) -> list[int]:
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "corral.cli.main", "status", "wapp:app", "--tree", "--json"],
        cwd=wenv.workdir,
        env=wenv.env,
        capture_output=True,
        check=True,
    ).stdout
    return [p["pid"] for p in json.loads(out).get("escaped", [])]


@pytest.mark.parametrize("guard", ["on", "off"])
def test_fork_guard_double_fork_grandchild_that_raises(wenv: WorkerEnv, guard: str) -> None:
    """Seed 000, exactly: a task double-forks and the grandchild raises."""
    if guard == "off":
        wenv.env["CORRAL_UNSAFE_NO_FORK_GUARD"] = "1"
    w = wenv.start("-c", "1")
    marker = wenv.path("grandchild")
    handle = wenv.module.double_fork_grandchild_raises.delay(marker)
    if guard == "on":
        assert handle.get(timeout_s=30) == "parent result"
        assert poll_for(lambda: "ended with os._exit(70)" in w.log(), timeout_s=10)
        assert wenv.module.add.delay(1, 2).get(timeout_s=30) == 3
        assert w.stop() == 0
        return
    # Negative control: the grandchild unwinds into corral's runner and reports its own
    # failure as the task's outcome, as a second worker would.
    with pytest.raises(TaskFailed) as caught:
        handle.get(timeout_s=30)
    assert "grandchild failed" in caught.value.remote_message
    grandchild = _pid_in(marker)
    w.stop()
    if _alive(grandchild):
        os.kill(grandchild, signal.SIGKILL)


def test_worker_main_reaps_orphans_no_zombies(wenv: WorkerEnv) -> None:
    w = wenv.start("-c", "2")
    handles = [wenv.module.orphan_short_children.delay(5) for _ in range(20)]
    assert [h.get(timeout_s=60) for h in handles] == [5] * 20
    assert poll_for(lambda: not zombies_under(w.pid), timeout_s=10), zombies_under(w.pid)
    assert w.stop() == 0


def test_pool_processes_reap_the_children_their_tasks_did_not_wait_for(
    wenv: WorkerEnv,
) -> None:
    """The pool process reaps after a SIGCHLD (not a waitid per task): children a task
    left unwaited do not stay <defunct> under it."""
    w = wenv.start("-c", "1")
    pids = wenv.module.unwaited_children.delay(5).get(timeout_s=60)
    assert len(pids) == 5
    assert poll_for(lambda: not (set(pids) & set(zombies_under(w.pid))), timeout_s=10), (
        zombies_under(w.pid)
    )
    assert w.stop() == 0


def test_negative_control_unwaited_children_are_zombies_without_a_reaper() -> None:
    """The check above can fail: a process that does not reap keeps them <defunct>."""
    import subprocess
    import sys

    code = (
        "import os, sys, time\n"
        "pids = [os.posix_spawn('/bin/true', ['true'], dict(os.environ)) for _ in range(3)]\n"
        "print(' '.join(map(str, pids)), flush=True)\n"
        "time.sleep(30)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        pids = [int(p) for p in holder.stdout.readline().split()]
        assert poll_for(lambda: set(pids) <= set(zombies_under(holder.pid)), timeout_s=10)
    finally:
        holder.kill()
        holder.wait(timeout=10)
