"""RedisBroker.watch_ready: the wait the worker's loop drives from its selector.

A watch blocks on the inbox on a connection of its own; asked to, it reserves in the
same round trip that ends the wait (redis_watch.py).
"""

from __future__ import annotations

import select
import time

import pytest
import redis

from corral.brokers.base import Settlement
from corral.brokers.redis import RedisBroker
from corral.brokers.redis_watch import InboxWatch
from corral.results import TaskState
from tests.brokers.builders import plain_envelope as env


def readable_within(fd: int, timeout_s: float) -> bool:
    return bool(select.select([fd], [], [], timeout_s)[0])


@pytest.fixture
def wb(rb: RedisBroker) -> RedisBroker:
    """The broker with the wait_bound script loaded (a watch's first step is then one reply)."""
    rb.wait_ready(["warm-up"], 0.0)
    return rb


def test_a_watch_ends_at_its_first_step_when_a_message_is_ready(wb: RedisBroker) -> None:
    wb.send([env("a")])
    watch = wb.watch_ready(["q"], 5.0)
    assert readable_within(watch.fileno(), 5.0)  # the wait_bound reply: ready now
    assert watch.finish() is True


def test_a_watch_ends_when_a_message_is_sent(wb: RedisBroker) -> None:
    watch = wb.watch_ready(["q"], 5.0)
    assert readable_within(watch.fileno(), 5.0)
    assert watch.finish() is False  # nothing ready: now blocked on the inbox
    assert not readable_within(watch.fileno(), 0.3)
    wb.send([env("a")])  # the same broker: the watch holds a connection of its own
    assert readable_within(watch.fileno(), 5.0)
    assert watch.finish() is True
    assert [d.id for d in wb.reserve(["q"], 5, owner="w")] == ["a"]


def test_a_watch_ends_when_a_scheduled_message_falls_due(wb: RedisBroker) -> None:
    wb.send([env("later", delay_s=0.5)])
    watch = wb.watch_ready(["q"], 30.0)
    assert readable_within(watch.fileno(), 5.0)
    assert watch.finish() is False
    assert readable_within(watch.fileno(), 10.0)  # the bound, not the 30 s timeout
    assert watch.finish() is True
    assert [d.id for d in wb.reserve(["q"], 5, owner="w")] == ["later"]


def test_a_watch_after_a_short_reserve_blocks_at_once(wb: RedisBroker) -> None:
    wb.send([env("a")])
    assert [d.id for d in wb.reserve(["q"], 5, owner="w")] == ["a"]  # short: 1 of 5
    watch = wb.watch_ready(["q"], 5.0)
    assert watch is not None
    assert not readable_within(watch.fileno(), 0.3)  # no wait_bound step: blocked already
    wb.send([env("b")])
    assert readable_within(watch.fileno(), 5.0)
    assert watch.finish() is True
    assert [d.id for d in wb.reserve(["q"], 5, owner="w")] == ["b"]


def test_a_short_reserve_bounds_the_next_wait_by_its_lease(wb: RedisBroker) -> None:
    wb.send([env("a", lease_s=0.5)])
    assert len(wb.reserve(["q"], 5, owner="w")) == 1
    watch = wb.watch_ready(["q"], 30.0)
    assert watch is not None
    assert readable_within(watch.fileno(), 10.0)  # the lease's expiry, not the 30 s
    assert watch.finish() is True
    assert [d.id for d in wb.reserve(["q"], 5, owner="w2")] == ["a"]


def test_a_watch_of_other_queues_than_the_reserve_asks_wait_bound(wb: RedisBroker) -> None:
    wb.send([env("a"), env("x", queue="other")])
    assert len(wb.reserve(["q"], 5, owner="w")) == 1
    watch = wb.watch_ready(["other"], 5.0)  # the reserve's bound says nothing about it
    assert watch is not None
    assert readable_within(watch.fileno(), 5.0)
    assert watch.finish() is True  # wait_bound: ready now
    assert [d.id for d in wb.reserve(["other"], 5, owner="w")] == ["x"]


def test_a_watch_reloads_its_script_after_a_script_flush(rb: RedisBroker, raw: redis.Redis) -> None:
    raw.script_flush()
    watch = rb.watch_ready(["q"], 5.0)
    assert readable_within(watch.fileno(), 5.0)
    assert watch.finish() is False  # NOSCRIPT: the source was sent
    assert readable_within(watch.fileno(), 5.0)
    assert watch.finish() is False  # its answer: nothing ready, now blocked on the inbox
    rb.send([env("a")])
    assert readable_within(watch.fileno(), 5.0)
    assert watch.finish() is True


def test_a_cancelled_watch_leaves_the_broker_usable(wb: RedisBroker) -> None:
    watch = wb.watch_ready(["q"], 5.0)
    watch.cancel()
    wb.send([env("a")])  # the cancelled wait's late reply is never read as this reply
    assert [d.id for d in wb.reserve(["q"], 5, owner="w")] == ["a"]


# -- a watch that reserves as its wait ends -----------------------------------------------------
def reserving_watch(broker: RedisBroker, limit: int = 5) -> InboxWatch:
    """A watch after a short reserve, so that it starts blocked, with a reserve behind."""
    assert broker.reserve(["q"], limit, owner="w") == []
    watch = broker.watch_ready(["q"], 5.0, limit=limit, owner="w")
    assert watch is not None
    return watch


def test_a_reserving_watch_ends_with_the_message_leased(wb: RedisBroker) -> None:
    watch = reserving_watch(wb)
    assert not readable_within(watch.fileno(), 0.3)
    wb.send([env("a")])
    assert readable_within(watch.fileno(), 5.0)
    assert watch.finish() is True
    taken = watch.taken()
    assert taken is not None and taken.limit == 5
    [delivery] = taken.deliveries
    assert (delivery.id, delivery.deliveries) == ("a", 1)
    assert wb.state("a") is TaskState.RUNNING
    assert wb.reserve(["q"], 5, owner="other") == []  # leased once, to this watch's owner
    assert wb.settle([Settlement("a", delivery.token, TaskState.SUCCEEDED, b"1")]) == [True]


def test_a_reserving_watch_that_times_out_reserves_nothing(wb: RedisBroker) -> None:
    assert wb.reserve(["q"], 5, owner="w") == []
    watch = wb.watch_ready(["q"], 0.2, limit=5, owner="w")
    assert watch is not None
    assert readable_within(watch.fileno(), 5.0)
    assert watch.finish() is True
    assert watch.taken() == ([], 5)


def test_cancelling_a_reserving_watch_keeps_what_it_leased(wb: RedisBroker) -> None:
    watch = reserving_watch(wb)
    wb.send([env("a")])
    assert readable_within(watch.fileno(), 5.0)  # the wait ended and the reserve ran
    watch.cancel()  # e.g. the worker stops here, before reading the replies
    taken = watch.taken()
    assert taken is not None and [d.id for d in taken.deliveries] == ["a"]


def test_negative_control_closing_the_connection_strands_the_lease(wb: RedisBroker) -> None:
    # What cancel() used to do: the reserve's reply is never read, and the message stays
    # leased to no one until its lease expires (30 s here).
    watch = reserving_watch(wb)
    wb.send([env("a")])
    assert readable_within(watch.fileno(), 5.0)
    watch._pending.cancel()
    assert wb.state("a") is TaskState.RUNNING
    assert wb.reserve(["q"], 5, owner="other") == []


def test_cancelling_an_idle_reserving_watch_is_prompt_and_takes_nothing(
    wb: RedisBroker,
) -> None:
    watch = reserving_watch(wb)
    started = time.monotonic()
    watch.cancel()  # a nudge ends the blocked wait
    assert time.monotonic() - started < 1.0  # not the wait slice (4 s here)
    assert watch.taken() == ([], 5)
    wb.send([env("b")])
    assert [d.id for d in wb.reserve(["q"], 5, owner="w")] == ["b"]  # the nudge is harmless


def test_a_reserving_watch_after_a_script_flush_leaves_the_reserve_to_the_caller(
    wb: RedisBroker, raw: redis.Redis
) -> None:
    watch = reserving_watch(wb)
    raw.script_flush()
    wb.send([env("a")])
    assert readable_within(watch.fileno(), 5.0)
    assert watch.finish() is True
    assert watch.taken() is None  # NOSCRIPT: nothing ran
    assert [d.id for d in wb.reserve(["q"], 5, owner="w")] == ["a"]
