"""Contract: sending, delivery order, queues, countdowns and idempotent ids."""

from __future__ import annotations

from collections.abc import Callable

from corral.brokers.base import Broker
from corral.results import TaskState
from tests.brokers.builders import drain_ids, envelope, reserve_one, send_ids, settle


def test_reserve_returns_the_sent_message(broker: Broker) -> None:
    broker.send([envelope("a", task="add", priority=3, lease_s=7.0)])
    got = reserve_one(broker)
    assert (got.id, got.task, got.queue, got.priority, got.body) == (
        "a",
        "add",
        "default",
        3,
        b"body-a",
    )
    assert (got.deliveries, got.attempts, got.lease_s) == (1, 0, 7.0)
    assert got.token > 0


def test_fifo_within_a_priority(broker: Broker) -> None:
    ids = [f"m{i:03}" for i in range(50)]
    send_ids(broker, ids[:25])
    send_ids(broker, ids[25:])
    assert drain_ids(broker) == ids


def test_higher_priority_first(broker: Broker) -> None:
    broker.send([envelope("low", priority=0), envelope("high", priority=9)])
    broker.send([envelope("mid", priority=5), envelope("low2", priority=0)])
    assert drain_ids(broker) == ["high", "mid", "low", "low2"]


def test_negative_priority_after_default(broker: Broker) -> None:
    broker.send([envelope("neg", priority=-1), envelope("zero")])
    assert drain_ids(broker) == ["zero", "neg"]


def test_limit_bounds_a_reserve(broker: Broker) -> None:
    send_ids(broker, [str(i) for i in range(10)])
    first = broker.reserve(["default"], 4, owner="w")
    second = broker.reserve(["default"], 100, owner="w")
    assert [d.id for d in first] == ["0", "1", "2", "3"]
    assert [d.id for d in second] == [str(i) for i in range(4, 10)]
    assert broker.reserve(["default"], 100, owner="w") == []


def test_queues_are_isolated(broker: Broker) -> None:
    broker.send([envelope("a1", queue="a"), envelope("b1", queue="b"), envelope("a2", queue="a")])
    assert drain_ids(broker, ["b"]) == ["b1"]
    assert drain_ids(broker, ["c"]) == []
    assert drain_ids(broker, ["a"]) == ["a1", "a2"]


def test_several_queues_merge_by_priority_then_fifo(broker: Broker) -> None:
    broker.send([envelope("a1", queue="a"), envelope("b1", queue="b"), envelope("a2", queue="a")])
    broker.send([envelope("b2", queue="b", priority=1)])
    assert drain_ids(broker, ["a", "b"]) == ["b2", "a1", "b1", "a2"]


def test_a_queue_named_twice_delivers_once(broker: Broker) -> None:
    send_ids(broker, ["x", "y"])
    assert drain_ids(broker, ["default", "default"]) == ["x", "y"]


def test_leased_messages_are_not_delivered_again(broker: Broker) -> None:
    send_ids(broker, ["a", "b"])
    assert [d.id for d in broker.reserve(["default"], 1, owner="w1")] == ["a"]
    assert [d.id for d in broker.reserve(["default"], 5, owner="w2")] == ["b"]
    assert broker.reserve(["default"], 5, owner="w3") == []


def test_countdown_waits_for_its_time(broker: Broker, advance: Callable[[float], None]) -> None:
    broker.send([envelope("later", delay_s=1.0), envelope("now", lease_s=60.0)])
    assert drain_ids(broker) == ["now"]
    assert broker.state("later") is TaskState.SCHEDULED
    advance(0.5)
    assert drain_ids(broker) == []
    advance(0.6)
    assert drain_ids(broker) == ["later"]


def test_due_eta_rows_come_in_eta_order(broker: Broker, advance: Callable[[float], None]) -> None:
    broker.send([envelope("second", delay_s=1.0), envelope("first", delay_s=0.5)])
    advance(1.1)
    assert drain_ids(broker) == ["first", "second"]


def test_many_future_tasks_do_not_hide_ready_ones(broker: Broker) -> None:
    broker.send([envelope(f"f{i}", delay_s=3600.0) for i in range(2000)])
    send_ids(broker, ["ready"])
    assert drain_ids(broker) == ["ready"]


def test_send_of_a_pending_id_is_ignored(broker: Broker) -> None:
    broker.send([envelope("x", new_id=False, body=b"first")])
    broker.send(
        [
            envelope("x", new_id=False, body=b"second"),
            envelope("x", new_id=False, body=b"third", delay_s=5.0),
        ]
    )
    got = broker.reserve(["default"], 10, owner="w")
    assert [(d.id, d.body) for d in got] == [("x", b"first")]
    broker.send([envelope("x", new_id=False, body=b"while-running")])
    assert drain_ids(broker) == []


def test_send_of_a_scheduled_id_is_ignored(
    broker: Broker, advance: Callable[[float], None]
) -> None:
    broker.send([envelope("x", new_id=False, delay_s=1.0, body=b"first")])
    broker.send([envelope("x", new_id=False, body=b"second")])
    assert drain_ids(broker) == []
    advance(1.1)
    got = broker.reserve(["default"], 10, owner="w")
    assert [(d.id, d.body) for d in got] == [("x", b"first")]


def test_duplicate_ids_in_one_batch_keep_the_first(broker: Broker) -> None:
    broker.send(
        [envelope("x", new_id=False, body=b"one"), envelope("x", new_id=False, body=b"two")]
    )
    assert [d.body for d in broker.reserve(["default"], 10, owner="w")] == [b"one"]


def test_send_of_a_finished_id_runs_it_again(broker: Broker) -> None:
    send_ids(broker, ["x"], new_id=False)
    assert settle(broker, reserve_one(broker), TaskState.SUCCEEDED, b"old")
    assert broker.get_result("x") is not None
    broker.send([envelope("x", new_id=False, body=b"again")])
    assert broker.get_result("x") is None
    assert broker.wait_result("x", 0.05) is None  # a waiter never sees the old outcome
    assert broker.state("x") is TaskState.QUEUED
    assert reserve_one(broker).body == b"again"


def test_send_of_an_empty_batch_does_nothing(broker: Broker) -> None:
    broker.send([])
    assert broker.queue_stats() == []


def test_purge_removes_ready_and_scheduled_but_not_leased(broker: Broker) -> None:
    send_ids(broker, ["run", "r1", "r2"])
    broker.send([envelope("later", delay_s=60.0), envelope("other", queue="other")])
    running = reserve_one(broker)
    assert broker.purge("default") == 3
    assert drain_ids(broker) == []
    assert broker.state("later") is None
    assert broker.state("run") is TaskState.RUNNING
    assert settle(broker, running, TaskState.SUCCEEDED)
    assert drain_ids(broker, ["other"]) == ["other"]
    assert broker.purge("default") == 0


def test_limit_holds_across_several_queues(broker: Broker) -> None:
    broker.send([envelope(f"a{i}", queue="a") for i in range(3)])
    broker.send([envelope(f"b{i}", queue="b") for i in range(3)])
    got = broker.reserve(["b", "a"], 4, owner="w")
    assert [d.id for d in got] == ["a0", "a1", "a2", "b0"]
    assert drain_ids(broker, ["a", "b"]) == ["b1", "b2"]


# -- ids generated for the send (Envelope.new_id): brokers may skip the idempotency checks --


def test_a_large_batch_of_new_ids_keeps_its_order_and_fields(broker: Broker) -> None:
    ids = [f"n{i:03}" for i in range(250)]  # more than one multi-row statement, and a rest
    broker.send([envelope(i, new_id=True, task="add", lease_s=7.0) for i in ids])
    got = broker.reserve(["default"], 1000, owner="w")
    assert [d.id for d in got] == ids
    assert {(d.task, d.queue, d.priority, d.lease_s) for d in got} == {("add", "default", 0, 7.0)}
    assert [d.body for d in got] == [f"body-{i}".encode() for i in ids]


def test_new_ids_with_different_fields_keep_theirs(broker: Broker) -> None:
    sent = [
        envelope(f"n{i:03}", new_id=True, task=f"t{i % 3}", priority=i % 2, lease_s=1.0 + i % 4)
        for i in range(200)
    ]
    broker.send(sent)
    got = {d.id: d for d in broker.reserve(["default"], 1000, owner="w")}
    assert {(e.id, e.task, e.priority, e.lease_s, e.body) for e in sent} == {
        (d.id, d.task, d.priority, d.lease_s, d.body) for d in got.values()
    }


def test_new_ids_with_a_countdown_wait_for_their_time(
    broker: Broker, advance: Callable[[float], None]
) -> None:
    ids = [f"n{i:03}" for i in range(150)]
    broker.send([envelope(i, new_id=True, delay_s=1.0) for i in ids])
    assert drain_ids(broker) == []
    assert broker.state("n000") is TaskState.SCHEDULED
    advance(1.1)
    assert sorted(drain_ids(broker)) == ids


def test_a_batch_mixing_new_and_chosen_ids_keeps_its_order(broker: Broker) -> None:
    send_ids(broker, ["chosen"], new_id=False)
    again = envelope("chosen", new_id=False, body=b"again")
    broker.send([envelope("a", new_id=True), again, envelope("b", new_id=True)])
    got = broker.reserve(["default"], 10, owner="w")
    assert [(d.id, d.body) for d in got] == [
        ("chosen", b"body-chosen"),  # pending: the resend was ignored
        ("a", b"body-a"),
        ("b", b"body-b"),
    ]
