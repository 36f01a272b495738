"""Tasks run by a real worker: results, failures, retries, dead letters, bad messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral import TaskFailed, TaskState, TimeLimitExceeded
from corral.brokers.base import Envelope
from tests.worker.conftest import WorkerEnv

pytestmark = pytest.mark.timeout(90)


def test_results_come_back_with_their_types(wenv: WorkerEnv) -> None:
    w = wenv.start("-c", "2")
    handles = [wenv.module.add.delay(i, 1) for i in range(50)]
    assert [h.get(timeout_s=30) for h in handles] == [i + 1 for i in range(50)]
    assert handles[0].status() is TaskState.SUCCEEDED
    assert handles[0].ready()
    assert w.stop() == 0


def test_failure_carries_remote_type_message_traceback_and_dead_letter(wenv: WorkerEnv) -> None:
    wenv.start("-c", "1")
    handle = wenv.module.always_fails.delay(7)
    with pytest.raises(TaskFailed) as caught:
        handle.get(timeout_s=30)
    assert caught.value.type_name == "KeyError"
    assert "missing 7" in caught.value.remote_message
    assert "raise KeyError" in caught.value.remote_traceback
    assert handle.status() is TaskState.FAILED
    [letter] = wenv.module.app.broker.dead_letters()
    assert letter.id == handle.id
    assert "retries exhausted" in letter.reason
    assert letter.attempts == 2  # the two retries the task allows


def test_unencodable_result_fails_the_task_not_the_worker(wenv: WorkerEnv) -> None:
    w = wenv.start("-c", "1")
    handle = wenv.module.unencodable_result.delay()
    with pytest.raises(TaskFailed) as caught:
        handle.get(timeout_s=30)
    assert "cannot encode" in caught.value.remote_message
    assert wenv.module.add.delay(2, 2).get(timeout_s=30) == 4  # the same pool process lives
    assert w.stop() == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\x00\xffnot json", "undecodable message"),
        (b'{"not": "a call"}', "undecodable message"),
        (b'["wapp.no_such_task", [], {}]', "unknown task 'wapp.no_such_task'"),
    ],
)
def test_bad_messages_go_to_dead_letters_and_worker_keeps_running(
    wenv: WorkerEnv, body: bytes, reason: str
) -> None:
    w = wenv.start("-c", "1")
    broker = wenv.module.app.broker
    broker.send([Envelope(id="bad-1", task="wapp.add", queue="default", body=body)])
    with pytest.raises(TaskFailed):
        wenv.module.app.wait_result("bad-1", timeout_s=30)
    assert broker.state("bad-1") is TaskState.DEAD
    [letter] = broker.dead_letters()
    assert reason in letter.reason
    assert wenv.module.add.delay(1, 1).get(timeout_s=30) == 2
    assert w.stop() == 0


def test_hard_time_limit_kills_and_fails_with_time_limit_exceeded(wenv: WorkerEnv) -> None:
    w = wenv.start("-c", "1")
    [first_pool] = w.wait_pools(1)
    handle = wenv.module.hard_limited.delay(60)
    with pytest.raises(TimeLimitExceeded) as caught:
        handle.get(timeout_s=30)
    assert "timeout_s=1" in caught.value.remote_message
    assert wenv.module.my_pid.delay().get(timeout_s=30) != first_pool  # replaced
    assert "hard time limit" in w.log()
    assert w.stop() == 0  # a kill the worker chose is not an abnormal death


def test_soft_time_limit_raises_inside_the_task(wenv: WorkerEnv) -> None:
    wenv.start("-c", "1")
    assert wenv.module.soft_limited.delay().get(timeout_s=30) == "cleaned up"


def test_revoke_pending_task(wenv: WorkerEnv) -> None:
    handle = wenv.module.add.send(args=(1, 2), countdown_s=60)
    assert handle.status() is TaskState.SCHEDULED
    assert handle.revoke()
    assert handle.status() is TaskState.REVOKED
    from corral import TaskRevoked

    with pytest.raises(TaskRevoked):
        handle.get(timeout_s=5)


def test_revoke_terminate_kills_the_running_task(wenv: WorkerEnv) -> None:
    w = wenv.start("-c", "1")
    marker = wenv.path("pid")
    handle = wenv.module.pid_then_sleep.delay(marker, 60)
    from tests.helpers.procs import poll_for

    assert poll_for(lambda: handle.status() is TaskState.RUNNING, timeout_s=20)
    assert handle.revoke(terminate=True)
    from corral import TaskRevoked

    with pytest.raises(TaskRevoked):
        handle.get(timeout_s=30)
    assert "revoked with terminate" in w.log()
    assert w.stop() == 0


def test_quick_tasks_are_not_stuck_behind_a_long_one(wenv: WorkerEnv) -> None:
    """Batching hands quick tasks out many at a time; a long task must not hold them."""
    w = wenv.start("-c", "2")
    warm = [wenv.module.add.delay(i, i) for i in range(200)]  # pool windows grow
    assert [h.get(timeout_s=30) for h in warm] == [2 * i for i in range(200)]
    marker = Path(wenv.path("long-finished"))
    long_task = wenv.module.sleep_then_mark.delay(str(marker), 8.0)
    quick = wenv.module.add.send_many([((i, 1), {}) for i in range(100)])  # one reserve
    assert [h.get(timeout_s=30) for h in quick] == [i + 1 for i in range(100)]
    assert not marker.exists()  # the quick ones did not wait behind the long one
    assert long_task.get(timeout_s=30) == "marked"
    assert w.stop() == 0


def test_cli_revoke_terminate(wenv: WorkerEnv) -> None:
    import subprocess
    import sys

    from tests.helpers.procs import poll_for

    w = wenv.start("-c", "1")
    handle = wenv.module.pid_then_sleep.delay(wenv.path("pid"), 60)
    assert poll_for(lambda: handle.status() is TaskState.RUNNING, timeout_s=20)
    done = subprocess.run(
        [sys.executable, "-m", "corral.cli.main", "revoke", "wapp:app", handle.id, "--terminate"],
        cwd=wenv.workdir,
        env=wenv.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert poll_for(lambda: handle.status() is TaskState.REVOKED, timeout_s=30)
    assert w.stop() == 0
