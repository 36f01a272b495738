"""The Redis broker against a crashing, stalled, absent, TLS-only or password-protected server.

Each test starts its own private redis-server (never 127.0.0.1:6379) and stops it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
import redis

from corral.brokers.base import Settlement
from corral.brokers.redis import RedisBroker
from corral.errors import BrokerUnavailable, ConfigError
from corral.results import TaskState
from tests.brokers.builders import plain_envelope as env
from tests.helpers.redis_server import (
    RedisServer,
    free_port,
    make_tls_files,
    redis_server_binary,
    running_redis,
    tls_supported,
)

pytestmark = pytest.mark.skipif(
    redis_server_binary() is None, reason="redis-server is not installed"
)


def roundtrip(broker: RedisBroker) -> None:
    """Send, reserve and settle one message: the broker works end to end."""
    broker.send([env("probe")])
    got = broker.reserve(["probe-q", "q"], 10, owner="w")
    probe = next(d for d in got if d.id == "probe")
    assert broker.settle([Settlement("probe", probe.token, TaskState.SUCCEEDED, b"ok")])
    assert broker.wait_result("probe", 5.0) is not None


# -- a crash and restart -------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_restarted_redis_loses_nothing_and_is_reconnected(tmp_path: Path) -> None:
    server = RedisServer(persistent=True, data_dir=tmp_path)
    server.start()
    broker = RedisBroker(server.url, connect_timeout_s=10.0)
    try:
        broker.send([env(f"m{i}") for i in range(100)])
        broker.send([env("later", delay_s=3600)])
        leased = broker.reserve(["q"], 10, owner="w")
        server.kill()  # SIGKILL: only the append-only file (fsync always) survives
        restarter = threading.Timer(0.5, server.start)
        restarter.start()
        # The next calls reconnect, reload the scripts (NOSCRIPT) and carry on.
        lease = leased[0]
        assert broker.settle([Settlement(lease.id, lease.token, TaskState.SUCCEEDED, b"r")])
        restarter.join()
        stats = {s.queue: s for s in broker.queue_stats()}["q"]
        assert (stats.ready, stats.running, stats.scheduled) == (90, 9, 1)
        rest = broker.reserve(["q"], 200, owner="w")
        assert {d.id for d in rest} | {d.id for d in leased} == {f"m{i}" for i in range(100)}
        assert broker.get_result(lease.id) is not None
    finally:
        broker.close()
        server.stop()


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_worker_loop_keeps_calling_through_a_restart(tmp_path: Path) -> None:
    server = RedisServer(persistent=True, data_dir=tmp_path).start()
    broker = RedisBroker(server.url, connect_timeout_s=10.0)
    try:
        broker.send([env(f"m{i}") for i in range(50)])
        done: list[str] = []
        for round_no in range(25):
            if round_no == 5:
                server.kill()
                threading.Timer(0.3, server.start).start()
            batch = broker.reserve(["q"], 2, owner="w")
            oks = broker.settle([Settlement(d.id, d.token, TaskState.SUCCEEDED) for d in batch])
            done += [d.id for d, ok in zip(batch, oks, strict=True) if ok]
        assert sorted(done) == sorted(f"m{i}" for i in range(50))
    finally:
        broker.close()
        server.stop()


# -- no server, a stalled server ------------------------------------------------------------
@pytest.mark.timeout(30)
def test_unreachable_redis_raises_broker_unavailable_in_time() -> None:
    broker = RedisBroker(f"redis://127.0.0.1:{free_port()}/0", connect_timeout_s=1.0)
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="unreachable"):
        broker.send([env("a")])
    assert time.monotonic() - started <= 1.5  # the bound is the point of the option
    broker.close()


@pytest.mark.timeout(30)
def test_a_stalled_redis_raises_instead_of_hanging() -> None:
    with running_redis() as server:
        broker = RedisBroker(server.url, connect_timeout_s=1.0, socket_timeout_s=0.5)
        broker.send([env("a")])
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(BrokerUnavailable):
                broker.reserve(["q"], 1, owner="w")
            assert time.monotonic() - started <= 2.0
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        assert [d.id for d in broker.reserve(["q"], 1, owner="w")] == ["a"]
        broker.close()


# -- credentials, databases, TLS ------------------------------------------------------------
@pytest.mark.timeout(30)
def test_password_in_the_url() -> None:
    with running_redis(password="s3cret") as server:
        broker = RedisBroker(server.url)
        roundtrip(broker)
        broker.close()
        wrong = RedisBroker(server.url.replace("s3cret", "nope"))
        with pytest.raises(ConfigError, match="user and password"):
            wrong.send([env("a")])
        wrong.close()


@pytest.mark.timeout(30)
def test_acl_user_in_the_url() -> None:
    with running_redis(acl_user=("corral", "pw1")) as server:
        assert server.url.startswith("redis://corral:pw1@")
        broker = RedisBroker(server.url)
        roundtrip(broker)
        broker.close()


@pytest.mark.timeout(30)
def test_the_db_number_in_the_url_is_used() -> None:
    with running_redis() as server:
        broker = RedisBroker(server.url.replace("/0", "/3"))
        broker.send([env("a")])
        broker.close()
        for db, expected in ((0, 0), (3, 1)):
            client = redis.Redis(port=server.port, db=db)
            assert client.exists("corral:inbox") == expected
            client.close()


@pytest.mark.timeout(60)
def test_tls_with_a_self_signed_certificate(tmp_path: Path) -> None:
    if not tls_supported():
        pytest.skip("the installed redis-server was built without TLS (--tls-port unknown)")
    files = make_tls_files(tmp_path)
    with running_redis(tls=files) as server:
        assert server.url.startswith("rediss://")
        broker = RedisBroker(server.url, tls_ca_file=str(files.ca_file))
        roundtrip(broker)
        broker.close()
        untrusted = RedisBroker(server.url, connect_timeout_s=0.5)  # no CA: refuses the cert
        with pytest.raises(BrokerUnavailable):
            untrusted.send([env("a")])
        untrusted.close()
