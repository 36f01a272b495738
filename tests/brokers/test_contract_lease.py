"""Contract: leases expire and redeliver, tokens fence, extend renews, poison dies."""

from __future__ import annotations

from collections.abc import Callable

from corral.brokers.base import Broker, LeaseStatus, Settlement
from corral.results import TaskState
from tests.brokers.builders import drain_ids, reserve_one, send_ids, settle


def test_an_expired_lease_is_delivered_again(
    broker: Broker, advance: Callable[[float], None]
) -> None:
    send_ids(broker, ["x"])
    first = reserve_one(broker, owner="dead-worker")
    advance(0.9)
    assert drain_ids(broker) == []
    advance(0.2)
    second = reserve_one(broker, owner="w2")
    assert second.id == "x"
    assert second.deliveries == 2
    assert second.token != first.token


def test_a_redelivered_message_keeps_its_place(
    broker: Broker, advance: Callable[[float], None]
) -> None:
    send_ids(broker, ["old"])
    reserve_one(broker)
    send_ids(broker, ["new"])
    advance(1.1)
    assert drain_ids(broker) == ["old", "new"]


def test_stale_token_settle_after_relet_does_nothing(
    broker: Broker, advance: Callable[[float], None]
) -> None:
    send_ids(broker, ["x"])
    stale = reserve_one(broker, owner="slow")
    advance(1.1)
    fresh = reserve_one(broker, owner="w2")
    assert not settle(broker, stale, TaskState.SUCCEEDED, b"from-slow")
    assert broker.get_result("x") is None
    assert broker.state("x") is TaskState.RUNNING
    assert settle(broker, fresh, TaskState.SUCCEEDED, b"from-w2")
    record = broker.get_result("x")
    assert record is not None and record.payload == b"from-w2"


def test_result_is_stored_once(broker: Broker) -> None:
    send_ids(broker, ["x"])
    got = reserve_one(broker)
    assert settle(broker, got, TaskState.SUCCEEDED, b"first")
    assert not settle(broker, got, TaskState.FAILED, b"second")
    record = broker.get_result("x")
    assert record is not None and (record.state, record.payload) == (TaskState.SUCCEEDED, b"first")
    assert broker.dead_letters() == []


def test_stale_token_extend_after_relet_is_lost(
    broker: Broker, advance: Callable[[float], None]
) -> None:
    send_ids(broker, ["x"])
    stale = reserve_one(broker)
    advance(1.1)
    fresh = reserve_one(broker)
    assert broker.extend([(stale.id, stale.token), (fresh.id, fresh.token)]) == [
        LeaseStatus.LOST,
        LeaseStatus.HELD,
    ]


def test_an_expired_lease_nobody_took_can_still_finish(
    broker: Broker, advance: Callable[[float], None]
) -> None:
    send_ids(broker, ["x"])
    got = reserve_one(broker)
    advance(1.1)
    assert broker.extend([(got.id, got.token)]) == [LeaseStatus.HELD]
    assert drain_ids(broker) == []
    assert settle(broker, got, TaskState.SUCCEEDED)


def test_extend_pushes_the_deadline(broker: Broker, advance: Callable[[float], None]) -> None:
    send_ids(broker, ["x"])
    got = reserve_one(broker)
    for _ in range(3):
        advance(0.7)
        assert broker.extend([(got.id, got.token)]) == [LeaseStatus.HELD]
    assert drain_ids(broker) == []
    advance(1.1)
    assert drain_ids(broker) == ["x"]


def test_extend_of_unknown_or_settled_leases_is_lost(broker: Broker) -> None:
    send_ids(broker, ["x"])
    got = reserve_one(broker)
    assert settle(broker, got, TaskState.SUCCEEDED)
    assert broker.extend([(got.id, got.token), ("nope", 1), (got.id, 0)]) == [LeaseStatus.LOST] * 3
    assert broker.extend([]) == []


def test_every_delivery_gets_a_new_token(broker: Broker, advance: Callable[[float], None]) -> None:
    send_ids(broker, ["x"], max_deliveries=10)
    tokens = set()
    for _ in range(5):
        tokens.add(reserve_one(broker).token)
        advance(1.1)
    assert len(tokens) == 5


def test_poison_message_goes_to_the_dead_letters(
    broker: Broker, advance: Callable[[float], None]
) -> None:
    send_ids(broker, ["poison"], max_deliveries=2)
    for delivery in (1, 2):
        assert reserve_one(broker).deliveries == delivery
        advance(1.1)  # the worker died: its lease expires
    assert drain_ids(broker) == []
    [dead] = broker.dead_letters()
    assert (dead.id, dead.task, dead.queue, dead.deliveries) == ("poison", "echo", "default", 2)
    assert "delivered 2 times without finishing" in dead.reason
    assert "poison message?" in dead.reason
    assert dead.body == b"body-poison"
    record = broker.get_result("poison")
    assert record is not None and record.state is TaskState.DEAD
    assert broker.state("poison") is TaskState.DEAD


def test_graceful_hand_back_does_not_count(broker: Broker) -> None:
    send_ids(broker, ["x"], max_deliveries=1)
    for _ in range(3):
        got = reserve_one(broker)
        assert got.deliveries == 1
        assert settle(broker, got, TaskState.QUEUED)
        assert broker.state("x") is TaskState.QUEUED


def test_crashed_hand_back_counts(broker: Broker) -> None:
    send_ids(broker, ["x"], max_deliveries=2)
    first = reserve_one(broker)
    assert settle(broker, first, TaskState.QUEUED, crashed=True)
    second = reserve_one(broker)
    assert second.deliveries == 2
    assert settle(broker, second, TaskState.QUEUED, crashed=True)
    assert drain_ids(broker) == []
    assert broker.state("x") is TaskState.DEAD


def test_handed_back_message_is_first_again(broker: Broker) -> None:
    send_ids(broker, ["a", "b"])
    got = reserve_one(broker)
    assert settle(broker, got, TaskState.QUEUED)
    assert drain_ids(broker) == ["a", "b"]


def test_stale_hand_back_does_nothing(broker: Broker) -> None:
    send_ids(broker, ["x"])
    got = reserve_one(broker)
    assert settle(broker, got, TaskState.QUEUED)
    assert not settle(broker, got, TaskState.QUEUED)
    assert not settle(broker, got, TaskState.SUCCEEDED)
    assert broker.get_result("x") is None
    assert drain_ids(broker) == ["x"]


def test_settle_is_one_batch_with_one_answer_each(broker: Broker) -> None:
    send_ids(broker, ["a", "b", "c"])
    a, b, c = broker.reserve(["default"], 3, owner="w")
    answers = broker.settle(
        [
            Settlement(a.id, a.token, TaskState.SUCCEEDED, b"ra"),
            Settlement(b.id, b.token + 1, TaskState.SUCCEEDED, b"rb"),
            Settlement(c.id, c.token, TaskState.FAILED, b"rc", reason="boom"),
        ]
    )
    assert answers == [True, False, True]
    assert broker.state("a") is TaskState.SUCCEEDED
    assert broker.state("b") is TaskState.RUNNING
    assert broker.state("c") is TaskState.FAILED
    assert broker.settle([]) == []
