"""The broker contract suite's fixtures: one ``broker`` per registered broker kind.

To run the suite against another broker, add one line to ``BROKER_FACTORIES``.
A factory gets the test's :class:`FakeClock` and a private directory, and must
return a *new client of the same store* each time it is called with the same
arguments (tests open a second client to play another process or thread).

A broker whose clock cannot be faked (Redis uses the server's ``TIME``) is
registered with ``fake_clock=False``: :func:`advance` then really sleeps for
short steps and skips the test for long ones.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from corral.brokers.base import Broker
from corral.brokers.redis import RedisBroker
from corral.brokers.sqlite import SqliteBroker
from tests.brokers.clock import FakeClock
from tests.helpers.redis_server import open_test_redis_broker, session_redis, stop_session_redis

MAX_REAL_ADVANCE_S = 1.5
"""The longest step :func:`advance` sleeps through for a broker on a real clock."""


@dataclass(frozen=True)
class BrokerKind:
    """How to open one kind of broker for a test."""

    open: Callable[[FakeClock, Path], Broker]
    fake_clock: bool = True


BROKER_FACTORIES: dict[str, BrokerKind] = {
    "sqlite": BrokerKind(
        lambda clock, tmp: SqliteBroker(tmp / "broker.db", clock=clock, worker_expiry_s=1.0)
    ),
    "redis": BrokerKind(open_test_redis_broker, fake_clock=False),
}


@pytest.fixture(scope="session", autouse=True)
def _session_redis_stopped() -> Iterator[None]:
    """The shared redis-server starts on first use; it is stopped when the session ends."""
    yield
    stop_session_redis()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of this test process's private redis-server (started on first use)."""
    return session_redis().url


@pytest.fixture
def prefix() -> str:
    """A key prefix of the test's own on the shared private server."""
    return "r" + uuid.uuid4().hex[:12]


@pytest.fixture
def rb(redis_url: str, prefix: str) -> Iterator[RedisBroker]:
    """A RedisBroker on the private server, under the test's own prefix."""
    broker = RedisBroker(redis_url, key_prefix=prefix)
    yield broker
    broker.close()


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A plain redis-py client of the private server, to look behind the broker."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def clock() -> FakeClock:
    """The test's clock; brokers registered with ``fake_clock=True`` read it."""
    return FakeClock()


@pytest.fixture(params=sorted(BROKER_FACTORIES))
def broker_kind(request: pytest.FixtureRequest) -> BrokerKind:
    return BROKER_FACTORIES[request.param]


@pytest.fixture
def open_broker(
    broker_kind: BrokerKind, clock: FakeClock, tmp_path: Path
) -> Iterator[Callable[[], Broker]]:
    """Opens another client of the test's broker store (closed after the test)."""
    opened: list[Broker] = []

    def open_one() -> Broker:
        opened.append(broker_kind.open(clock, tmp_path))
        return opened[-1]

    yield open_one
    for broker in opened:
        broker.close()


@pytest.fixture
def broker(open_broker: Callable[[], Broker]) -> Broker:
    """The broker under test."""
    return open_broker()


@pytest.fixture
def advance(broker_kind: BrokerKind, clock: FakeClock) -> Callable[[float], None]:
    """Moves the broker's time forward by some seconds."""

    def advance_s(seconds: float) -> None:
        if broker_kind.fake_clock:
            clock.advance(seconds)
        elif seconds <= MAX_REAL_ADVANCE_S:
            time.sleep(seconds)  # the broker's clock is real: let real time pass
        else:
            pytest.skip(f"needs a fake clock to move {seconds:g} s")

    return advance_s
