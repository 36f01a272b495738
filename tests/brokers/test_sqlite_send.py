"""SQLite specifics of send: the fast path for generated ids and how rows are stored."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.brokers.sqlite import SqliteBroker
from corral.brokers.sqlite_send import ROWS_PER_INSERT
from corral.errors import BrokerError
from corral.results import TaskState
from tests.brokers.builders import envelope, reserve_one, settle


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[SqliteBroker]:
    opened = SqliteBroker(tmp_path / "b.db")
    yield opened
    opened.close()


def rows(broker: SqliteBroker, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(broker.path) as db:
        return db.execute(sql).fetchall()


def test_a_generated_id_found_pending_fails_the_whole_batch(broker: SqliteBroker) -> None:
    broker.send([envelope("x", new_id=True)])
    with pytest.raises(BrokerError, match=r"UNIQUE constraint failed: messages\.id"):
        broker.send([envelope("y", new_id=True), envelope("x", new_id=True)])
    assert rows(broker, "SELECT id FROM messages") == [("x",)]


def test_generated_ids_skip_forgetting_a_result(broker: SqliteBroker) -> None:
    # Only a caller-chosen id can carry an old result: a generated one must not pay for it.
    broker.send([envelope("x", new_id=False)])
    assert settle(broker, reserve_one(broker), TaskState.SUCCEEDED, b"old")
    broker.send([envelope("x", new_id=True)])
    assert broker.get_result("x") is not None
    broker.send([envelope("x", new_id=False)])
    assert broker.get_result("x") is None


@pytest.mark.parametrize("new_id", [True, False])
@pytest.mark.parametrize("count", [1, ROWS_PER_INSERT, 2 * ROWS_PER_INSERT + 7])
def test_bodies_are_stored_as_blobs(broker: SqliteBroker, new_id: bool, count: int) -> None:
    broker.send([envelope(f"m{i}", new_id=new_id) for i in range(count)])
    broker.send([envelope(f"later{i}", new_id=new_id, delay_s=60.0) for i in range(count)])
    for table in ("messages", "scheduled"):
        assert rows(broker, f"SELECT DISTINCT typeof(body) FROM {table}") == [("blob",)]
    assert reserve_one(broker).body == b"body-m0"
