"""The connections of one process to the SQLite broker file, and their transactions.

One connection per thread: a threaded web app calling ``delay()`` from many
request threads must not interleave transactions on one connection. A
connection is never used across ``fork``: :meth:`SqliteConnection.db`
remembers which process opened the connections and opens new ones when the
process id (``corral.forks.current_pid``) changes. SQLite errors leave as corral
errors naming the file.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from corral.brokers.sqlite_schema import connect
from corral.errors import BrokerError, BrokerUnavailable
from corral.forks import current_pid

__all__ = ["SqliteConnection"]

# Connections opened before a fork. The child must neither use nor close them (closing
# may checkpoint or unlink the WAL under the parent's feet), so they are kept alive.
_INHERITED: list[sqlite3.Connection] = []


class SqliteConnection:
    """The current thread's connection to ``path``, opened on demand."""

    def __init__(self, path: Path, *, busy_timeout_s: float) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._pid = current_pid()
        self._closed = False

    def db(self) -> sqlite3.Connection:
        """This thread's connection (opened now if it has none yet)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._pid == current_pid():
            return conn
        if self._closed:
            raise BrokerError(f"the SQLite broker on {self.path} is closed; open a new broker")
        if self._pid != current_pid():
            self._forget_parents()
        with self.errors():
            conn = connect(self.path, busy_timeout_s=self.busy_timeout_s)
        self._local.conn = conn
        with self._lock:
            self._opened.append(conn)
        return conn

    def _forget_parents(self) -> None:
        """After a fork: the parent's connections are kept alive, unused (see _INHERITED)."""
        with self._lock:
            _INHERITED.extend(self._opened)
            self._opened = []
        self._local = threading.local()
        self._pid = current_pid()

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
        """Close this process's connections; later calls raise :class:`BrokerError`."""
        self._closed = True
        if self._pid != current_pid():
            return
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._local = threading.local()
