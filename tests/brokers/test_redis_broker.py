"""Redis-specific behaviour of RedisBroker (the shared contract lives in test_contract_*)."""

from __future__ import annotations

import os
import threading
import time

import pytest
import redis

from corral.brokers import broker_from_url
from corral.brokers.base import LeaseStatus, Settlement
from corral.brokers.redis import RedisBroker
from corral.errors import BrokerError, ConfigError
from corral.results import TaskState
from tests.brokers.builders import plain_envelope as env
from tests.helpers.procs import poll_for


def calls(raw: redis.Redis, command: str) -> int:
    stats = raw.info("commandstats").get(f"cmdstat_{command}", {})
    return int(stats.get("calls", 0))


# -- options and URLs ---------------------------------------------------------------------
def test_unknown_option_lists_the_valid_ones(redis_url: str) -> None:
    with pytest.raises(ConfigError, match=r"'sockettimeout'.*valid options are.*socket_timeout_s"):
        RedisBroker(redis_url, sockettimeout=3)


@pytest.mark.parametrize(
    ("option", "value"),
    [("connect_timeout_s", 0), ("max_connections", 0), ("key_prefix", "a:b")],
)
def test_impossible_option_values_are_named(redis_url: str, option: str, value: object) -> None:
    with pytest.raises(ConfigError, match=option):
        RedisBroker(redis_url, **{option: value})


def test_a_url_of_another_scheme_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"redis:// or rediss://"):
        RedisBroker("http://localhost:6379/0")


def test_url_options_name_the_store_for_another_process(rb: RedisBroker, prefix: str) -> None:
    assert f"key_prefix={prefix}" in rb.url
    other = broker_from_url(rb.url)
    try:
        rb.send([env("a")])
        assert other.state("a") is TaskState.QUEUED
    finally:
        other.close()


def test_a_bad_url_option_value_is_named(redis_url: str) -> None:
    with pytest.raises(ConfigError, match="connect_timeout_s"):
        RedisBroker(f"{redis_url}?connect_timeout_s=soon")


def test_prefixes_isolate_stores(redis_url: str, rb: RedisBroker) -> None:
    other = RedisBroker(redis_url, key_prefix=rb.url.rsplit("=", 1)[1] + "x")
    try:
        rb.send([env("a")])
        assert other.state("a") is None
        assert other.reserve(["q"], 10, owner="w") == []
    finally:
        other.close()


def test_a_client_can_be_given(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    broker = RedisBroker(client, key_prefix=prefix)
    try:
        broker.send([env("a")])
        assert [d.id for d in broker.reserve(["q"], 5, owner="w")] == ["a"]
    finally:
        broker.close()
        client.close()


def test_a_decoding_client_is_refused(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    with pytest.raises(ConfigError, match="decode_responses=False"):
        RedisBroker(client)
    client.close()


def test_priority_outside_the_exact_range_is_refused(rb: RedisBroker) -> None:
    with pytest.raises(ConfigError, match="priority 5000"):
        rb.send([env("a", priority=5000)])


def test_a_closed_broker_says_so(rb: RedisBroker) -> None:
    rb.close()
    with pytest.raises(BrokerError, match="closed"):
        rb.now()


# -- the server's clock and scripts ------------------------------------------------------
def test_now_is_the_servers_time(rb: RedisBroker, raw: redis.Redis) -> None:
    seconds, micros = raw.time()
    assert abs(rb.now() - (seconds + micros / 1e6)) < 1.0


def test_scripts_are_reloaded_after_a_flush(rb: RedisBroker, raw: redis.Redis) -> None:
    rb.send([env("a")])
    raw.script_flush()
    rb.send([env("b")])
    assert [d.id for d in rb.reserve(["q"], 5, owner="w")] == ["a", "b"]


def test_send_is_one_push_and_a_countdown_batch_one_script_call(
    rb: RedisBroker, raw: redis.Redis
) -> None:
    rb.send([env("warm", delay_s=60)])  # loads the script
    pushes, scripts = calls(raw, "rpush"), calls(raw, "evalsha")
    rb.send([env(f"m{i}") for i in range(200)])
    assert (calls(raw, "rpush"), calls(raw, "evalsha")) == (pushes + 1, scripts)
    rb.send([env(f"d{i}", delay_s=60) for i in range(50)] + [env("now")])
    assert calls(raw, "evalsha") == scripts + 1
    assert len(rb.reserve(["q"], 500, owner="w")) == 201


def test_a_backlog_larger_than_one_batch_is_accepted_in_order(rb: RedisBroker) -> None:
    ids = [f"m{i:05}" for i in range(4500)]
    for start in range(0, len(ids), 500):
        rb.send([env(i) for i in ids[start : start + 500]])
    assert rb.state(ids[-1]) is TaskState.QUEUED  # needs all three batches
    got = [d.id for d in rb.reserve(["q"], 5000, owner="w")]
    assert got == ids


def test_packed_fields_survive_any_bytes_and_names(rb: RedisBroker) -> None:
    body = bytes(range(256)) * 3
    rb.send([env("id with spaces \u00e9 1 2", task="pkg.t\u00e2sk", queue="qu eue", body=body,
                 priority=-7, lease_s=12.5, max_deliveries=3, result_ttl_s=9.25)])  # fmt: skip
    got = rb.reserve(["qu eue"], 1, owner="w")[0]
    assert (got.id, got.task, got.queue, got.body) == (
        "id with spaces \u00e9 1 2",
        "pkg.t\u00e2sk",
        "qu eue",
        body,
    )
    assert (got.priority, got.lease_s) == (-7, 12.5)


def test_reserve_and_settle_of_many_are_one_call_each(rb: RedisBroker, raw: redis.Redis) -> None:
    rb.send([env(f"m{i}") for i in range(50)])
    rb.reserve(["other"], 1, owner="w")
    rb.settle([Settlement("none", 1, TaskState.SUCCEEDED)])  # both scripts loaded
    before = calls(raw, "evalsha")
    got = rb.reserve(["q"], 50, owner="w")
    oks = rb.settle([Settlement(d.id, d.token, TaskState.SUCCEEDED, b"r") for d in got])
    assert len(got) == 50
    assert all(oks)
    assert calls(raw, "evalsha") == before + 2


def test_a_resent_settle_recognises_its_own_outcome(rb: RedisBroker, prefix: str) -> None:
    # What RedisConnection.call does when the first reply was lost: the same call again,
    # flagged as a resend. A plain second settle with the same token is stale.
    rb.send([env("a")])
    got = rb.reserve(["q"], 1, owner="w")[0]
    script = rb._scripts["settle"]  # the resend path, driven by hand
    args = ["a", got.token, "succeeded", b"r", 0, "", 0]

    def run(argv: list[object]) -> object:
        return rb._conn.call(lambda connection: script.run(connection, argv))

    assert run([prefix, 0, *args]) == [1]
    assert run([prefix, 1, *args]) == [1]
    assert run([prefix, 0, *args]) == [0]
    assert run([prefix, 1, "a", got.token, "failed", b"", 0, "", 0]) == [0]


# -- revoke, crashes, retries --------------------------------------------------------------
def test_revoke_without_terminate_lets_it_finish_but_never_retry(rb: RedisBroker) -> None:
    rb.send([env("a")])
    got = rb.reserve(["q"], 1, owner="w")[0]
    assert rb.revoke("a")
    assert rb.extend([("a", got.token)]) == [LeaseStatus.HELD]
    assert rb.settle([Settlement("a", got.token, TaskState.RETRYING, b"e", delay_s=0)])
    assert rb.state("a") is TaskState.REVOKED


def test_revoke_with_terminate_is_reported_by_extend(rb: RedisBroker) -> None:
    rb.send([env("a")])
    got = rb.reserve(["q"], 1, owner="w")[0]
    assert rb.revoke("a", terminate=True)
    assert rb.revoke("a")  # does not take terminate back
    assert rb.extend([("a", got.token)]) == [LeaseStatus.REVOKED]


def test_crashed_hand_backs_count_towards_max_deliveries(rb: RedisBroker) -> None:
    rb.send([env("a", max_deliveries=2)])
    for _ in range(2):
        got = rb.reserve(["q"], 1, owner="w")[0]
        crash = Settlement("a", got.token, TaskState.QUEUED, crashed=True)
        assert rb.settle([crash]) == [True]
    assert rb.reserve(["q"], 1, owner="w") == []
    assert rb.state("a") is TaskState.DEAD
    assert "poison" in rb.dead_letters()[0].reason


def test_graceful_hand_backs_do_not_count(rb: RedisBroker) -> None:
    rb.send([env("a", max_deliveries=1)])
    for _ in range(3):
        got = rb.reserve(["q"], 1, owner="w")[0]
        assert rb.settle([Settlement("a", got.token, TaskState.QUEUED)]) == [True]
    assert rb.reserve(["q"], 1, owner="w")[0].deliveries == 1


# -- blocking waits ------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_wait_result_in_many_threads_wakes_them_all(rb: RedisBroker, redis_url: str) -> None:
    rb.send([env("a")])
    records: list[object] = []

    def wait() -> None:
        records.append(rb.wait_result("a", 20.0))

    threads = [threading.Thread(target=wait) for _ in range(8)]
    for t in threads:
        t.start()
    got = rb.reserve(["q"], 1, owner="w")[0]
    assert rb.settle([Settlement("a", got.token, TaskState.SUCCEEDED, b"r")])
    for t in threads:
        t.join(timeout=20)
    assert len(records) == 8
    assert all(getattr(r, "payload", None) == b"r" for r in records)


@pytest.mark.timeout(30)
def test_waiting_never_subscribes(rb: RedisBroker, raw: redis.Redis) -> None:
    rb.send([env("a")])
    waiter = threading.Thread(target=rb.wait_result, args=("a", 1.0))
    waiter.start()
    assert poll_for(lambda: calls(raw, "blmove") > 0, timeout_s=5)
    waiter.join()
    assert raw.pubsub_channels() == []
    assert calls(raw, "subscribe") == 0


def test_wait_result_times_out_with_none(rb: RedisBroker) -> None:
    started = time.monotonic()
    assert rb.wait_result("nothing", 0.3) is None
    assert time.monotonic() - started >= 0.3


@pytest.mark.timeout(30)
def test_an_idle_wait_costs_next_to_no_commands(rb: RedisBroker, raw: redis.Redis) -> None:
    rb.wait_ready(["q"], 0.01)  # scripts loaded
    before = calls(raw, "evalsha") + calls(raw, "blmove")
    started = time.monotonic()
    rb.wait_ready(["q"], 1.5)
    assert time.monotonic() - started >= 1.5
    assert calls(raw, "evalsha") + calls(raw, "blmove") - before <= 4


@pytest.mark.timeout(30)
def test_wait_ready_wakes_on_send_from_another_client(rb: RedisBroker, redis_url: str) -> None:
    other = RedisBroker(rb.url)
    woke = threading.Event()
    waiter = threading.Thread(target=lambda: (rb.wait_ready(["q"], 20.0), woke.set()))
    waiter.start()
    assert not woke.wait(0.2)
    other.send([env("a")])
    assert woke.wait(10.0)
    waiter.join()
    other.close()


# -- fork safety -----------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_a_forked_child_opens_its_own_connections(rb: RedisBroker) -> None:
    rb.send([env("parent")])
    parent_connection = rb._conn.call(lambda connection: connection)
    pid = os.fork()
    if pid == 0:  # the child: must not reuse the parent's connections
        code = 1
        try:
            ok = rb._conn.call(lambda connection: connection) is not parent_connection
            rb.send([env("child")])
            code = 0 if ok else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert {d.id for d in rb.reserve(["q"], 5, owner="w")} == {"parent", "child"}
    assert rb._conn.call(lambda connection: connection) is parent_connection


# -- gevent (seeds/004: per-task pub/sub broke under gevent) -------------------------------
_GEVENT_CLIENT = """
import sys
from gevent import monkey
monkey.patch_all()
import gevent
from corral.brokers.base import Envelope, Settlement
from corral.brokers.redis import RedisBroker
from corral.results import TaskState

broker = RedisBroker(sys.argv[1])
ids = [f"g{i}" for i in range(50)]

def produce_and_wait(task_id):
    broker.send([Envelope(id=task_id, task="t", queue="q", body=b"b")])
    return broker.wait_result(task_id, 20.0)

def consume():
    done = 0
    while done < len(ids):
        got = broker.reserve(["q"], 10, owner="g")
        broker.settle([Settlement(d.id, d.token, TaskState.SUCCEEDED, b"r") for d in got])
        done += len(got)
        if not got:
            broker.wait_ready(["q"], 1.0)

waiters = [gevent.spawn(produce_and_wait, i) for i in ids]
consumer = gevent.spawn(consume)
gevent.joinall([*waiters, consumer], timeout=30, raise_error=True)
assert all(w.value is not None and w.value.payload == b"r" for w in waiters)
print("ok")
"""


@pytest.mark.timeout(60)
def test_gevent_greenlets_send_and_wait(rb: RedisBroker) -> None:
    pytest.importorskip("gevent", reason="gevent is not installed")
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _GEVENT_CLIENT, rb.url],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_message_accepted_by_any_script_leaves_idle_workers_a_nudge(
    rb: RedisBroker, raw: redis.Redis, prefix: str
) -> None:
    """Lost wake-up: an idle worker checks for ready messages, then blocks on the inbox.
    If in between a client's state() (or any script) accepts a just-sent message
    from the inbox, the worker would block on an empty inbox and sleep through it
    (a ~1 s stall seen in the round-trip benchmark). The accepting script leaves an
    empty entry so the blocked worker wakes and looks again."""
    rb.send([env("m1")])
    assert raw.llen(f"{prefix}:inbox") == 1
    assert rb.state("m1") is TaskState.QUEUED  # a client's script: accepts m1 from the inbox
    assert raw.lrange(f"{prefix}:inbox", 0, -1) == [b""]  # the nudge
    [delivery] = rb.reserve(["q"], 10, owner="w")
    assert delivery.id == "m1"


def test_the_outcome_rides_in_the_reply_that_wakes_the_waiter(
    rb: RedisBroker, raw: redis.Redis
) -> None:
    """A result wait is one blocking command: the element settle stores is the outcome,
    so no second round trip fetches it after the wake-up."""
    rb.send([env("a")])
    got = rb.reserve(["q"], 1, owner="w")[0]
    seen: list[object] = []
    waiter = threading.Thread(target=lambda: seen.append(rb.wait_result("a", 10.0)))
    waiter.start()
    time.sleep(0.2)  # blocked on the done list
    before = {name: calls(raw, name) for name in ("blmove", "lindex", "evalsha")}
    assert rb.settle([Settlement("a", got.token, TaskState.SUCCEEDED, b"r e s")])
    waiter.join(timeout=10)
    assert seen and seen[0] is not None and seen[0].payload == b"r e s"
    assert calls(raw, "lindex") == before["lindex"]  # nothing fetched after the wake-up
    assert calls(raw, "evalsha") == before["evalsha"] + 1  # the settle only


def test_a_caller_chosen_id_is_accepted_before_send_returns(
    rb: RedisBroker, raw: redis.Redis, prefix: str
) -> None:
    """A resend of a finished task must have replaced its outcome when send returns,
    or a waiter blocking on the done list would get the old one."""
    rb.send([env("x", new_id=False)])
    got = rb.reserve(["q"], 1, owner="w")[0]
    assert rb.settle([Settlement("x", got.token, TaskState.SUCCEEDED, b"old")])
    rb.send([env("x", new_id=False)])
    assert raw.llen(f"{prefix}:inbox") in (0, 1)  # accepted by a script (at most a nudge)
    assert rb.wait_result("x", 0.05) is None
    rb.send([env("fresh")])  # a generated id: one push, accepted later
    assert raw.lrange(f"{prefix}:inbox", -1, -1)[0].endswith(b"b")


def test_one_push_of_mixed_envelopes_keeps_each_ones_fields(rb: RedisBroker) -> None:
    batch = [
        env("a1", task="t.a", queue="qa", priority=3, lease_s=7.5, result_ttl_s=60.0),
        env("b1", task="t.b", queue="qb", priority=-2, max_deliveries=9),
        env("a2", task="t.a", queue="qa", priority=3, lease_s=7.5, result_ttl_s=60.0),
        env("long-id-" + "x" * 100, task="t.a", queue="qa", priority=3, body=b"\r\n$5\r\n"),
    ]
    rb.send(batch)
    got = {d.id: d for d in rb.reserve(["qa", "qb"], 10, owner="w")}
    assert set(got) == {e.id for e in batch}
    for sent in batch:
        d = got[sent.id]
        assert (d.task, d.queue, d.priority, d.body, d.lease_s) == (
            sent.task, sent.queue, sent.priority, sent.body, sent.lease_s
        )  # fmt: skip


def test_an_out_of_range_priority_is_refused_before_anything_is_sent(
    rb: RedisBroker, raw: redis.Redis, prefix: str
) -> None:
    with pytest.raises(ConfigError, match=r"t: priority 5000 is out of range"):
        rb.send([env("ok"), env("bad", priority=5000)])
    assert raw.llen(f"{prefix}:inbox") == 0
