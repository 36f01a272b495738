"""The SQLite broker's file: connection settings and the versioned schema.

Tables:

- ``messages``: ready and leased rows. ``seq`` (the rowid) orders FIFO; a row is
  ready when ``lease_until`` is NULL. The partial index ``messages_ready`` holds
  only ready rows, so reserve walks "queue = ? ORDER BY priority DESC, seq"
  without stepping over the leased ones; ``messages_leased`` finds expired leases.
- ``scheduled``: countdown, ETA and retry rows, indexed by ``eta`` and promoted
  into ``messages`` when due, so many future tasks do not slow reserve down.
- ``results``: one outcome per task, with an expiry (``result_ttl_s``).
- ``dead_letters``: messages that will not run again unless requeued.
- ``workers``: the worker registry.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from corral.errors import ConfigError

__all__ = ["SCHEMA_VERSION", "connect"]

SCHEMA_VERSION = 1

_DDL = """
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    task TEXT NOT NULL,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL,
    body BLOB NOT NULL,
    token INTEGER NOT NULL DEFAULT 0,
    lease_until REAL,
    owner TEXT,
    deliveries INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_s REAL NOT NULL,
    max_deliveries INTEGER NOT NULL,
    result_ttl_s REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    last_error BLOB
);
CREATE INDEX messages_ready ON messages (queue, priority DESC) WHERE lease_until IS NULL;
CREATE INDEX messages_leased ON messages (lease_until) WHERE lease_until IS NOT NULL;

CREATE TABLE scheduled (
    id TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL,
    body BLOB NOT NULL,
    eta REAL NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_s REAL NOT NULL,
    max_deliveries INTEGER NOT NULL,
    result_ttl_s REAL NOT NULL,
    last_error BLOB
);
CREATE INDEX scheduled_eta ON scheduled (eta);

CREATE TABLE results (
    task_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    payload BLOB NOT NULL,
    finished_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX results_expiry ON results (expires_at);

CREATE TABLE dead_letters (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    task TEXT NOT NULL,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL,
    body BLOB NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    error BLOB NOT NULL,
    deliveries INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    lease_s REAL NOT NULL,
    max_deliveries INTEGER NOT NULL,
    result_ttl_s REAL NOT NULL,
    died_at REAL NOT NULL
);

CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    queues TEXT NOT NULL,
    concurrency INTEGER NOT NULL,
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    tasks_done INTEGER NOT NULL DEFAULT 0,
    details TEXT NOT NULL DEFAULT '{}'
);
"""


def connect(path: Path, *, busy_timeout_s: float) -> sqlite3.Connection:
    """Open ``path`` in WAL mode, creating the schema on first use.

    The connection runs in autocommit mode: the broker opens its own
    transactions (``BEGIN IMMEDIATE`` for writes) so that it never holds a
    read snapshot between calls.
    """
    db = sqlite3.connect(
        path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
    )
    try:
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        db.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode loses no committed transaction on a process crash, only
        # (maybe) the last ones on a power loss, and saves an fsync per commit.
        db.execute("PRAGMA synchronous = NORMAL")
        _ensure_schema(db, path)
    except BaseException:
        db.close()
        raise
    return db


def _ensure_schema(db: sqlite3.Connection, path: Path) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    # Several processes may open a new file at once: create under the write lock,
    # after checking again, so only one of them runs the DDL.
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            for statement in _DDL.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version != SCHEMA_VERSION:
            raise ConfigError(
                f"SQLite broker file {path} has schema version {version}, this corral "
                f"reads version {SCHEMA_VERSION}; use the corral release that wrote it "
                "or start with a new file"
            )
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
