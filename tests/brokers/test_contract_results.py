"""Contract: results, their expiry, waiting for them, and state() for every state."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from corral.brokers.base import Broker, ResultRecord
from corral.results import TaskState
from tests.brokers.builders import envelope, reserve_one, send_ids, settle


def test_unknown_task_has_no_result_and_no_state(broker: Broker) -> None:
    assert broker.get_result("nope") is None
    assert broker.state("nope") is None


def test_results_expire_after_their_ttl(broker: Broker, advance: Callable[[float], None]) -> None:
    send_ids(broker, ["short"], result_ttl_s=1.0)
    send_ids(broker, ["long"], result_ttl_s=3600.0)
    for got in broker.reserve(["default"], 2, owner="w"):
        assert settle(broker, got, TaskState.SUCCEEDED, b"r")
    advance(1.1)
    assert broker.get_result("short") is None
    assert broker.state("short") is None
    assert broker.get_result("long") is not None
    assert broker.cleanup() == 1
    assert broker.cleanup() == 0
    assert broker.get_result("long") is not None


def test_an_expired_result_does_not_block_revoke_or_resend(
    broker: Broker, advance: Callable[[float], None]
) -> None:
    send_ids(broker, ["x"], result_ttl_s=1.0)
    assert settle(broker, reserve_one(broker), TaskState.SUCCEEDED)
    advance(1.1)
    send_ids(broker, ["x"])
    assert broker.state("x") is TaskState.QUEUED


@pytest.mark.timeout(20)
def test_wait_result_sees_another_threads_settle(open_broker: Callable[[], Broker]) -> None:
    client, worker = open_broker(), open_broker()
    send_ids(client, ["x"])
    got = reserve_one(worker)
    seen: list[ResultRecord | None] = []
    waiting = threading.Thread(target=lambda: seen.append(client.wait_result("x", 10.0)))
    waiting.start()
    time.sleep(0.05)  # not synchronisation: the waiter must already be waiting to test waiting
    assert settle(worker, got, TaskState.SUCCEEDED, b"done")
    waiting.join(timeout=10.0)
    assert not waiting.is_alive()
    assert seen and seen[0] is not None and seen[0].payload == b"done"


@pytest.mark.timeout(20)
def test_wait_result_returns_a_stored_result_at_once(broker: Broker) -> None:
    send_ids(broker, ["x"])
    assert settle(broker, reserve_one(broker), TaskState.FAILED, b"e")
    record = broker.wait_result("x", 0.0)
    assert record is not None and record.state is TaskState.FAILED


@pytest.mark.timeout(20)
def test_wait_result_times_out_with_none(broker: Broker) -> None:
    send_ids(broker, ["x"])
    started = time.monotonic()
    assert broker.wait_result("x", 0.2) is None
    assert time.monotonic() - started >= 0.2


@pytest.mark.timeout(20)
def test_wait_ready_returns_when_another_client_sends(open_broker: Callable[[], Broker]) -> None:
    worker, client = open_broker(), open_broker()
    woke = threading.Event()

    def wait() -> None:
        worker.wait_ready(["default"], 10.0)
        woke.set()

    waiting = threading.Thread(target=wait)
    waiting.start()
    send_ids(client, ["x"])
    assert woke.wait(10.0)
    waiting.join(timeout=10.0)
    assert worker.reserve(["default"], 1, owner="w")


@pytest.mark.timeout(20)
def test_wait_ready_returns_when_an_eta_falls_due(
    broker: Broker, advance: Callable[[float], None]
) -> None:
    broker.send([envelope("later", delay_s=1.0)])
    woke = threading.Event()

    def wait() -> None:
        broker.wait_ready(["default"], 10.0)
        woke.set()

    waiting = threading.Thread(target=wait)
    waiting.start()
    assert not woke.wait(0.05)
    advance(1.1)
    assert woke.wait(10.0)
    waiting.join(timeout=10.0)


@pytest.mark.timeout(20)
def test_wait_ready_times_out_on_an_empty_queue(broker: Broker) -> None:
    send_ids(broker, ["elsewhere"], queue="other")
    started = time.monotonic()
    broker.wait_ready(["default"], 0.2)
    assert time.monotonic() - started >= 0.2


@pytest.mark.timeout(20)
def test_wait_ready_returns_at_once_with_ready_messages(broker: Broker) -> None:
    send_ids(broker, ["x"])
    started = time.monotonic()
    broker.wait_ready(["default"], 10.0)
    assert time.monotonic() - started < 5.0


def test_state_of_every_kind(broker: Broker, advance: Callable[[float], None]) -> None:
    broker.send([envelope(task_id) for task_id in ("ok", "bad", "dead", "gone", "retry", "run")])
    broker.send([envelope("queued", queue="q2"), envelope("sched", delay_s=60.0)])
    by_id = {d.id: d for d in broker.reserve(["default"], 10, owner="w")}
    assert settle(broker, by_id["ok"], TaskState.SUCCEEDED)
    assert settle(broker, by_id["bad"], TaskState.FAILED)
    assert settle(broker, by_id["dead"], TaskState.DEAD)
    assert settle(broker, by_id["gone"], TaskState.REVOKED)
    assert settle(broker, by_id["retry"], TaskState.RETRYING, delay_s=60.0)
    expected = {
        "ok": TaskState.SUCCEEDED,
        "bad": TaskState.FAILED,
        "dead": TaskState.DEAD,
        "gone": TaskState.REVOKED,
        "retry": TaskState.RETRYING,
        "run": TaskState.RUNNING,
        "queued": TaskState.QUEUED,
        "sched": TaskState.SCHEDULED,
        "unknown": None,
    }
    assert {task_id: broker.state(task_id) for task_id in expected} == expected


def test_a_dead_letter_keeps_its_state_after_the_result_expires(
    broker: Broker, advance: Callable[[float], None]
) -> None:
    send_ids(broker, ["x"], result_ttl_s=1.0)
    assert settle(broker, reserve_one(broker), TaskState.FAILED, b"e", reason="r")
    advance(1.1)
    assert broker.get_result("x") is None
    assert broker.state("x") is TaskState.FAILED
