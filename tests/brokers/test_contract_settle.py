"""Contract: every settlement kind, retries and revocation."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from corral.brokers.base import Broker, LeaseStatus
from corral.errors import CorralError
from corral.results import TaskState
from tests.brokers.builders import drain_ids, envelope, reserve_one, send_ids, settle


def test_succeeded_stores_the_result_and_removes_the_message(broker: Broker) -> None:
    send_ids(broker, ["x"])
    assert settle(broker, reserve_one(broker), TaskState.SUCCEEDED, b"42")
    record = broker.get_result("x")
    assert record is not None
    assert (record.task_id, record.state, record.payload) == ("x", TaskState.SUCCEEDED, b"42")
    assert record.finished_at == pytest.approx(broker.now(), abs=2.0)
    assert broker.queue_stats() == []


@pytest.mark.parametrize("state", [TaskState.FAILED, TaskState.DEAD])
def test_failed_and_dead_go_to_the_dead_letters(broker: Broker, state: TaskState) -> None:
    send_ids(broker, ["x"])
    got = reserve_one(broker)
    assert settle(broker, got, state, b"err", reason="ValueError: nope")
    record = broker.get_result("x")
    assert record is not None and (record.state, record.payload) == (state, b"err")
    [dead] = broker.dead_letters()
    assert (dead.id, dead.reason, dead.error, dead.deliveries) == (
        "x",
        "ValueError: nope",
        b"err",
        1,
    )
    assert dead.body == b"body-x"
    assert broker.state("x") is state
    assert drain_ids(broker) == []


def test_retrying_delivers_again_after_the_delay(
    broker: Broker, advance: Callable[[float], None]
) -> None:
    send_ids(broker, ["x"])
    first = reserve_one(broker)
    assert settle(broker, first, TaskState.RETRYING, b"err1", delay_s=1.0)
    assert broker.state("x") is TaskState.RETRYING
    assert broker.get_result("x") is None
    assert drain_ids(broker) == []
    advance(1.1)
    second = reserve_one(broker)
    assert (second.attempts, second.body) == (1, b"body-x")
    assert second.token != first.token
    assert not settle(broker, first, TaskState.SUCCEEDED)
    assert settle(broker, second, TaskState.RETRYING, b"err2")
    assert reserve_one(broker).attempts == 2


def test_retries_do_not_count_as_poison(broker: Broker) -> None:
    send_ids(broker, ["x"], max_deliveries=2)
    for attempt in range(5):
        got = reserve_one(broker)
        assert got.attempts == attempt
        assert settle(broker, got, TaskState.RETRYING, b"err")
    assert broker.dead_letters() == []


def test_retry_goes_behind_waiting_messages(broker: Broker) -> None:
    send_ids(broker, ["x", "y"])
    assert settle(broker, reserve_one(broker), TaskState.RETRYING)
    assert drain_ids(broker) == ["y", "x"]


def test_revoked_settlement_stores_revoked(broker: Broker) -> None:
    send_ids(broker, ["x"])
    assert settle(broker, reserve_one(broker), TaskState.REVOKED)
    assert broker.state("x") is TaskState.REVOKED
    assert drain_ids(broker) == []


@pytest.mark.parametrize("state", [TaskState.RUNNING, TaskState.SCHEDULED])
def test_a_non_outcome_state_is_refused(broker: Broker, state: TaskState) -> None:
    send_ids(broker, ["x"])
    got = reserve_one(broker)
    with pytest.raises(CorralError, match=state.name):
        settle(broker, got, state)
    assert broker.state("x") is TaskState.RUNNING


def test_revoke_pending(broker: Broker) -> None:
    broker.send([envelope("ready"), envelope("later", delay_s=60.0)])
    assert broker.revoke("ready")
    assert broker.revoke("later")
    for task_id in ("ready", "later"):
        record = broker.get_result(task_id)
        assert record is not None and record.state is TaskState.REVOKED
    assert drain_ids(broker) == []


def test_revoke_unknown_or_final_is_false(broker: Broker) -> None:
    assert not broker.revoke("nope")
    send_ids(broker, ["x"])
    assert settle(broker, reserve_one(broker), TaskState.SUCCEEDED)
    assert not broker.revoke("x")
    assert broker.state("x") is TaskState.SUCCEEDED


def test_revoke_running_without_terminate(broker: Broker) -> None:
    send_ids(broker, ["x"])
    got = reserve_one(broker)
    assert broker.revoke("x")
    assert broker.extend([(got.id, got.token)]) == [LeaseStatus.HELD]
    assert settle(broker, got, TaskState.RETRYING, b"err")
    assert broker.state("x") is TaskState.REVOKED
    assert drain_ids(broker) == []


def test_revoke_running_with_terminate(broker: Broker) -> None:
    send_ids(broker, ["x"])
    got = reserve_one(broker)
    assert broker.revoke("x", terminate=True)
    assert broker.extend([(got.id, got.token)]) == [LeaseStatus.REVOKED]
    assert settle(broker, got, TaskState.REVOKED)
    assert broker.state("x") is TaskState.REVOKED


def test_a_revoked_task_that_finishes_keeps_its_result(broker: Broker) -> None:
    send_ids(broker, ["x"])
    got = reserve_one(broker)
    assert broker.revoke("x")
    assert settle(broker, got, TaskState.SUCCEEDED, b"done")
    assert broker.state("x") is TaskState.SUCCEEDED


def test_a_revoked_task_is_never_handed_back(broker: Broker) -> None:
    send_ids(broker, ["x"])
    got = reserve_one(broker)
    assert broker.revoke("x")
    assert settle(broker, got, TaskState.QUEUED)
    assert drain_ids(broker) == []
    assert broker.state("x") is TaskState.REVOKED


def test_a_revoked_task_whose_worker_died_is_not_redelivered(
    broker: Broker, advance: Callable[[float], None]
) -> None:
    send_ids(broker, ["x"])
    reserve_one(broker)
    assert broker.revoke("x", terminate=True)
    advance(1.1)
    assert drain_ids(broker) == []
    assert broker.state("x") is TaskState.REVOKED
