"""SQLite specifics: file settings, schema version, locking, fork safety, quiet waits."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corral.brokers.base import Settlement
from corral.brokers.sqlite import SqliteBroker
from corral.brokers.sqlite_schema import SCHEMA_VERSION
from corral.errors import BrokerError, BrokerUnavailable, ConfigError
from corral.results import TaskState
from tests.brokers.builders import envelope, reserve_one, send_ids, settle
from tests.brokers.clock import FakeClock


def test_file_settings(tmp_path: Path) -> None:
    broker = SqliteBroker(tmp_path / "b.db", busy_timeout_s=2.5)
    try:
        db = broker._conn.db()
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 2500
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        broker.close()


def test_bad_busy_timeout_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="busy_timeout_s"):
        SqliteBroker(tmp_path / "b.db", busy_timeout_s=0)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    SqliteBroker(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ConfigError, match=f"schema version {SCHEMA_VERSION + 1}"):
        SqliteBroker(path)


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(BrokerError, match=str(path)):
        SqliteBroker(path)


@pytest.mark.timeout(30)
def test_a_long_lock_raises_broker_unavailable_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    broker = SqliteBroker(path, busy_timeout_s=0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(BrokerUnavailable, match=str(path)):
            send_ids(broker, ["x"])
        assert broker.get_result("x") is None  # readers are not blocked (WAL)
        holder.execute("ROLLBACK")
        send_ids(broker, ["x"])  # and the broker recovers
        assert broker.state("x") is TaskState.QUEUED
    finally:
        holder.close()
        broker.close()


def test_a_closed_broker_refuses_work(tmp_path: Path) -> None:
    broker = SqliteBroker(tmp_path / "b.db")
    broker.close()
    with pytest.raises(BrokerError, match="closed"):
        send_ids(broker, ["x"])


@pytest.mark.timeout(30)
def test_a_forked_child_opens_its_own_connection(tmp_path: Path) -> None:
    broker = SqliteBroker(tmp_path / "b.db")
    parent_conn = broker._conn.db()
    send_ids(broker, ["x"], lease_s=60.0)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: must not touch the parent's connection
        code = 1
        try:
            own = broker._conn.db() is not parent_conn
            got = broker.reserve(["default"], 1, owner="child")
            done = [Settlement(d.id, d.token, TaskState.SUCCEEDED, b"") for d in got]
            settled = bool(got) and broker.settle(done) == [True]
            os.write(write_fd, b"ok" if own and settled else b"bad")
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    try:
        assert os.read(read_fd, 16) == b"ok"
    finally:
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert broker._conn.db() is parent_conn
    assert broker.state("x") is TaskState.SUCCEEDED
    broker.close()


@pytest.mark.timeout(60)
def test_processes_creating_one_new_file_at_once(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    code = (
        "import sys; from corral.brokers.sqlite import SqliteBroker; "
        "b = SqliteBroker(sys.argv[1]); b.send([]); b.close()"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path)]) for _ in range(4)]
    try:
        assert [proc.wait(timeout=50) for proc in procs] == [0, 0, 0, 0]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    broker = SqliteBroker(path)
    send_ids(broker, ["x"])
    assert reserve_one(broker).id == "x"
    broker.close()


@pytest.mark.timeout(30)
def test_idle_waits_do_not_hammer_the_database(tmp_path: Path) -> None:
    broker = SqliteBroker(tmp_path / "b.db")
    statements: list[str] = []
    broker._conn.db().set_trace_callback(statements.append)
    started = time.monotonic()
    broker.wait_ready(["default"], 0.5)
    broker.wait_result("nope", 0.5)
    assert time.monotonic() - started >= 1.0
    # Two half-second waits; a busy poll would run thousands of statements.
    assert len(statements) < 300, f"{len(statements)} statements in 1 s of idle waiting"
    assert sum("data_version" not in s for s in statements) < 20
    broker.close()


def test_reserve_walks_the_ready_index(tmp_path: Path) -> None:
    broker = SqliteBroker(tmp_path / "b.db")
    plan = (
        broker._conn.db()
        .execute(
            "EXPLAIN QUERY PLAN SELECT seq FROM messages WHERE queue = ? AND lease_until IS NULL "
            "ORDER BY priority DESC, seq LIMIT ?",
            ("default", 10),
        )
        .fetchall()
    )
    details = " ".join(row[-1] for row in plan)
    assert "messages_ready" in details and "TEMP B-TREE" not in details
    broker.close()


def test_poison_result_payload_is_the_last_error(tmp_path: Path) -> None:
    clock = FakeClock()
    broker = SqliteBroker(tmp_path / "b.db", clock=clock)
    broker.send([envelope("x", max_deliveries=1)])
    assert settle(broker, reserve_one(broker), TaskState.RETRYING, b"first error")
    got = reserve_one(broker)
    assert got.attempts == 1
    clock.advance(2.0)
    assert broker.reserve(["default"], 1, owner="w") == []
    [dead] = broker.dead_letters()
    assert dead.error == b"first error"
    broker.close()
