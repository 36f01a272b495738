"""RedisConnection: a connection is reused only when it is in step with the server.

The broker runs its commands on idle connections it keeps itself (redis-py's pool
checks each connection it lends for unread data, a system call per command).
These tests show the three ways a connection can fall out of step, and that none
of them leaks into the next command: an error reply, a reply that never came (a
timeout), and a server that closed the connection while it was idle.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest
import redis

from corral.brokers.redis import RedisBroker
from corral.brokers.redis_connection import RedisConnection, command
from corral.brokers.redis_options import RedisOptions
from corral.errors import BrokerError, BrokerUnavailable
from tests.helpers.redis_server import redis_server_binary

pytestmark = pytest.mark.skipif(
    redis_server_binary() is None, reason="redis-server is not installed"
)


def run(conn: RedisConnection, *args: object) -> object:
    return conn.call(lambda connection: command(connection, *args))


def test_one_connection_serves_sequential_calls(redis_url: str) -> None:
    conn = RedisConnection(redis_url, RedisOptions())
    try:
        first = conn.call(lambda connection: connection)
        assert run(conn, "PING") == b"PONG"
        assert conn.call(lambda connection: connection) is first
    finally:
        conn.close()


def test_an_error_reply_leaves_the_connection_in_step(redis_url: str) -> None:
    conn = RedisConnection(redis_url, RedisOptions())
    try:
        used = conn.call(lambda connection: connection)
        with pytest.raises(BrokerError, match="refused"):
            run(conn, "NO-SUCH-COMMAND")
        assert run(conn, "ECHO", "mine") == b"mine"
        assert conn.call(lambda connection: connection) is used  # kept: it was in step
    finally:
        conn.close()


def test_a_reply_that_never_came_is_not_read_by_the_next_command(
    redis_url: str, raw: redis.Redis
) -> None:
    # A blocking pop outlives the socket timeout; its reply arrives later, on the old
    # socket. Reused, that connection would answer the next command with it.
    conn = RedisConnection(redis_url, RedisOptions(socket_timeout_s=0.2, connect_timeout_s=0.3))
    key = "late-reply"
    try:
        with pytest.raises(BrokerUnavailable):
            run(conn, "BLPOP", key, 2)
        raw.rpush(key, "stale")
        assert run(conn, "ECHO", "fresh") == b"fresh"
    finally:
        conn.close()


def test_a_connection_closed_while_idle_is_replaced_without_an_outage(
    redis_url: str, raw: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    conn = RedisConnection(redis_url, RedisOptions())
    try:
        client_id = run(conn, "CLIENT", "ID")
        assert raw.execute_command("CLIENT", "KILL", "ID", client_id) == 1
        with caplog.at_level(logging.WARNING, logger="corral.brokers.redis"):
            assert run(conn, "PING") == b"PONG"
        assert "unreachable" not in caplog.text
    finally:
        conn.close()


def test_threads_share_the_idle_connections_safely(redis_url: str) -> None:
    broker = RedisBroker(redis_url, key_prefix="threads")
    errors: list[BaseException] = []

    def hammer(n: int) -> None:
        try:
            for i in range(200):
                echoed = broker._conn.call(lambda c, i=i: command(c, "ECHO", f"{n}-{i}"))
                assert echoed == f"{n}-{i}".encode()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    broker.close()
    assert not errors


def test_max_connections_makes_callers_wait_then_names_the_option(redis_url: str) -> None:
    conn = RedisConnection(redis_url, RedisOptions(max_connections=1, connect_timeout_s=0.3))
    blocked = threading.Thread(target=run, args=(conn, "BLPOP", "never-filled", 1.5))
    try:
        blocked.start()
        time.sleep(0.2)  # the one connection is now held by the blocking pop
        with pytest.raises(BrokerUnavailable, match=r"max_connections=1"):
            run(conn, "PING")
        blocked.join(timeout=10)
        assert run(conn, "PING") == b"PONG"  # free again: the same connection serves
    finally:
        blocked.join(timeout=10)
        conn.close()
