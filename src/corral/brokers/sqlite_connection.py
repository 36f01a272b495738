"""One process's connection to the SQLite broker file, and its transactions.

A connection is never used across ``fork``: :meth:`SqliteConnection.db`
remembers which process opened it and opens a new one when ``os.getpid()``
changes. SQLite errors leave as corral errors naming the file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from corral.brokers.sqlite_schema import connect
from corral.errors import BrokerError, BrokerUnavailable

__all__ = ["SqliteConnection"]

# Connections opened before a fork. The child must neither use nor close them (closing
# may checkpoint or unlink the WAL under the parent's feet), so they are kept alive.
_INHERITED: list[sqlite3.Connection] = []


class SqliteConnection:
    """The connection of the current process to ``path``, opened on demand."""

    def __init__(self, path: Path, *, busy_timeout_s: float) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._closed = False

    def db(self) -> sqlite3.Connection:
        """This process's connection (opened now if it has none yet)."""
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        if self._closed:
            raise BrokerError(f"the SQLite broker on {self.path} is closed; open a new broker")
        if self._conn is not None:
            _INHERITED.append(self._conn)  # opened by the parent: see _INHERITED
        with self.errors():
            self._conn = connect(self.path, busy_timeout_s=self.busy_timeout_s)
        self._pid = os.getpid()
        return self._conn

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Turn SQLite exceptions into :class:`BrokerUnavailable` / :class:`BrokerError`."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                raise BrokerUnavailable(
                    f"SQLite broker file {self.path} stayed locked for more than "
                    f"{self.busy_timeout_s:g} s (busy_timeout_s): another process holds a "
                    "long write transaction; retry, or raise busy_timeout_s"
                ) from exc
            raise BrokerError(f"SQLite broker file {self.path}: {text}") from exc
        except sqlite3.DatabaseError as exc:
            raise BrokerError(f"SQLite broker file {self.path}: {exc}") from exc

    @contextlib.contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        db = self.db()
        with self.errors():
            db.execute(begin)
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A write transaction, taken at once (``BEGIN IMMEDIATE``) so it never deadlocks."""
        return self._transaction("BEGIN IMMEDIATE")

    def read(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """One consistent snapshot across several SELECTs."""
        return self._transaction("BEGIN")

    def close(self) -> None:
        """Close this process's connection; later calls raise :class:`BrokerError`."""
        self._closed = True
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None
