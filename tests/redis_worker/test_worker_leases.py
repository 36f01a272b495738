"""Leases with real workers on Redis: renewal, redelivery after a vanished worker, fencing.

The task ``rapp.tagged_run`` has ``lease_s=2``; the worker tagged "slow" runs it for
longer than that, a worker tagged "fast" finishes it at once.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from corral import TaskState
from tests.helpers.procs import poll_for
from tests.redis_worker.conftest import RedisWorkerEnv, runs_in

LEASE_S = 2.0


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_running_task_keeps_its_lease_beyond_lease_s(renv: RedisWorkerEnv) -> None:
    slow = renv.start(tag="slow")
    folder = renv.folder("task")
    handle = renv.app.send("rapp.tagged_run", str(folder), LEASE_S * 2.5)
    assert poll_for(lambda: runs_in(folder) == ["slow"], timeout_s=20), slow.log()
    renv.start(tag="fast")  # idle, waiting: it would take the task if the lease lapsed
    renv.wait_registered(2)
    assert handle.get(timeout_s=30) == "slow"
    assert runs_in(folder) == ["slow"], "the task ran again although its lease was renewed"


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_the_task_of_a_sigkilled_worker_is_delivered_again(renv: RedisWorkerEnv) -> None:
    slow = renv.start(tag="slow")
    folder = renv.folder("task")
    handle = renv.app.send("rapp.tagged_run", str(folder), 60.0)
    assert poll_for(lambda: runs_in(folder) == ["slow"], timeout_s=20), slow.log()
    renv.start(tag="fast")
    renv.wait_registered(2)
    slow.signal(signal.SIGKILL)  # the worker main vanishes; its pool process follows it
    killed_at = time.monotonic()
    slow.wait()
    assert poll_for(lambda: len(runs_in(folder)) == 2, timeout_s=30, interval_s=0.01)
    delay_s = time.monotonic() - killed_at
    print(f"redelivered {delay_s:.2f}s after the SIGKILL (lease_s={LEASE_S})")
    assert handle.get(timeout_s=30) == "fast"
    assert runs_in(folder) == ["slow", "fast"]


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_a_late_outcome_does_not_overwrite_the_newer_delivery(renv: RedisWorkerEnv) -> None:
    """Fencing: a worker whose lease expired (its main stopped, so it could not renew)
    finishes the task after another worker got it again; its settle is refused."""
    slow = renv.start(tag="slow")
    folder = renv.folder("task")
    handle = renv.app.send("rapp.tagged_run", str(folder), LEASE_S * 3)
    assert poll_for(lambda: runs_in(folder) == ["slow"], timeout_s=20), slow.log()
    renv.start(tag="fast")
    renv.wait_registered(2)
    os.kill(slow.pid, signal.SIGSTOP)  # no renewal; its pool process keeps running
    try:
        assert handle.get(timeout_s=30) == "fast"
        stored = renv.app.broker.get_result(handle.id)
        assert poll_for((folder / "finished-slow").exists, timeout_s=30)
    finally:
        os.kill(slow.pid, signal.SIGCONT)
    assert slow.wait_log(f"outcome of task {handle.id} dropped"), slow.log()
    assert renv.app.broker.get_result(handle.id) == stored  # same state, payload, finish time
    assert handle.get(timeout_s=1) == "fast"
    assert runs_in(folder) == ["slow", "fast"]


@pytest.mark.timeout(90)
def test_what_the_wait_leased_as_a_warm_stop_came_goes_back_at_once(
    renv: RedisWorkerEnv,
) -> None:
    """An idle worker's wait reserves in the round trip that ends it. A message leased
    that way just as the worker stops is handed back, not stranded until its lease
    expires and another worker's reserve reclaims it."""
    idle = renv.start(tag="slow")
    renv.wait_registered(1)
    time.sleep(0.5)  # idle: blocked in its wait, the reserve queued behind it
    folder = renv.folder("task")
    os.kill(idle.pid, signal.SIGSTOP)
    try:
        handle = renv.app.send("rapp.tagged_run", str(folder), 0.0)
        # Redis ran the stopped worker's reserve when the send woke its wait.
        assert poll_for(lambda: handle.status() is TaskState.RUNNING, timeout_s=10)
        idle.signal(signal.SIGTERM)  # seen together with the wake-up when it resumes
    finally:
        os.kill(idle.pid, signal.SIGCONT)
    assert idle.wait() == 0, idle.log()
    # With no worker left to reclaim an expired lease, only a hand-back requeues it.
    assert poll_for(lambda: handle.status() is TaskState.QUEUED, timeout_s=5), idle.log()
    assert runs_in(folder) == []
    renv.start(tag="fast")
    assert handle.get(timeout_s=30) == "fast"
    assert runs_in(folder) == ["fast"]
