"""Contract: the worker registry, queue statistics and the dead letters."""

from __future__ import annotations

from collections.abc import Callable

from corral.brokers.base import Broker, QueueStats, WorkerInfo
from corral.results import TaskState
from tests.brokers.builders import drain_ids, envelope, reserve_one, send_ids, settle


def _worker(worker_id: str, **options: object) -> WorkerInfo:
    fields: dict[str, object] = {
        "id": worker_id,
        "host": "box",
        "pid": 1234,
        "queues": ("default", "mail"),
        "concurrency": 4,
        "started_at": 1000.0,
    }
    fields.update(options)
    return WorkerInfo(**fields)  # type: ignore[arg-type]


def test_register_list_unregister(broker: Broker) -> None:
    broker.register_worker(_worker("w1"))
    broker.register_worker(_worker("w2", pid=99, details='{"generation": 2}'))
    listed = {w.id: w for w in broker.workers()}
    assert set(listed) == {"w1", "w2"}
    w1 = listed["w1"]
    assert (w1.host, w1.pid, w1.queues, w1.concurrency, w1.started_at) == (
        "box", 1234, ("default", "mail"), 4, 1000.0,
    )  # fmt: skip
    assert w1.heartbeat_at == broker.now() or abs(w1.heartbeat_at - broker.now()) < 2.0
    assert listed["w2"].details == '{"generation": 2}'
    broker.unregister_worker("w1")
    assert [w.id for w in broker.workers()] == ["w2"]


def test_register_again_replaces(broker: Broker) -> None:
    broker.register_worker(_worker("w1", pid=1))
    broker.register_worker(_worker("w1", pid=2))
    assert [(w.id, w.pid) for w in broker.workers()] == [("w1", 2)]


def test_heartbeat_updates_counters(broker: Broker, advance: Callable[[float], None]) -> None:
    broker.register_worker(_worker("w1"))
    before = broker.workers()[0].heartbeat_at
    advance(1.0)
    broker.heartbeat("w1", tasks_done=17, details='{"busy": 3}')
    [after] = broker.workers()
    assert after.heartbeat_at > before
    assert (after.tasks_done, after.details) == (17, '{"busy": 3}')


def test_cleanup_forgets_silent_workers(broker: Broker, advance: Callable[[float], None]) -> None:
    # The test brokers are opened with worker_expiry_s=1.0 (default 300).
    broker.register_worker(_worker("silent"))
    broker.register_worker(_worker("alive"))
    advance(1.2)
    broker.heartbeat("alive", tasks_done=1)
    assert broker.cleanup() == 1
    assert [w.id for w in broker.workers()] == ["alive"]


def test_queue_stats(broker: Broker) -> None:
    send_ids(broker, ["r1", "r2", "run", "dead"], queue="a")
    broker.send([envelope("later", queue="a", delay_s=60.0), envelope("b1", queue="b")])
    first, second = broker.reserve(["a"], 2, owner="w")
    assert settle(broker, first, TaskState.FAILED, reason="x")
    assert broker.queue_stats() == [
        QueueStats("a", ready=2, scheduled=1, running=1, dead=1),
        QueueStats("b", ready=1, scheduled=0, running=0, dead=0),
    ]
    assert settle(broker, second, TaskState.SUCCEEDED)


def test_dead_letters_newest_first_with_limit(broker: Broker) -> None:
    send_ids(broker, ["d1", "d2", "d3"])
    for got in broker.reserve(["default"], 3, owner="w"):
        assert settle(broker, got, TaskState.FAILED, b"e-" + got.id.encode(), reason="r")
    assert [d.id for d in broker.dead_letters()] == ["d3", "d2", "d1"]
    assert [d.id for d in broker.dead_letters(limit=2)] == ["d3", "d2"]


def test_requeue_dead_runs_it_again_with_fresh_counters(
    broker: Broker, advance: Callable[[float], None]
) -> None:
    send_ids(broker, ["x"], max_deliveries=1)
    got = reserve_one(broker)
    assert settle(broker, got, TaskState.RETRYING)
    advance(0.1)
    got = reserve_one(broker)
    assert settle(broker, got, TaskState.FAILED, b"e", reason="r")
    assert broker.requeue_dead("x")
    assert not broker.requeue_dead("x")
    assert broker.dead_letters() == []
    assert broker.get_result("x") is None
    assert broker.state("x") is TaskState.QUEUED
    again = reserve_one(broker)
    assert (again.id, again.body, again.attempts, again.deliveries) == ("x", b"body-x", 0, 1)


def test_requeue_unknown_is_false(broker: Broker) -> None:
    assert not broker.requeue_dead("nope")


def test_purge_dead(broker: Broker) -> None:
    send_ids(broker, ["d1", "d2"])
    for got in broker.reserve(["default"], 2, owner="w"):
        assert settle(broker, got, TaskState.DEAD, reason="undecodable")
    assert broker.purge_dead() == 2
    assert broker.dead_letters() == []
    assert broker.purge_dead() == 0
    assert drain_ids(broker) == []
