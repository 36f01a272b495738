"""The fork-safe, retrying connections of the Redis broker (options: redis_options.py).

:class:`RedisConnection` keeps this process's idle redis-py connections in a
free list and runs each operation on one of them: a command is packed, sent
and its reply read, nothing else. redis-py's own ``Redis.execute_command``
checks every connection it lends out for unread data (one more system call per
command) and records metrics; on the broker's hot paths (a send, a reserve, a
settle, a result wait) that doubled the client's cost per command. Here a
connection goes back to the free list only after its reply was read whole
(a Redis error reply counts: it is read whole), and is disconnected after
anything else, so it never holds unread data. A reused connection the server
closed while it was idle (a restart, an idle timeout) fails on its next
command: the free list is then dropped and the operation retried at once on a
new connection, before anything is logged.

Connections never cross a ``fork``: a call from a new pid starts a new free
list (the parent's sockets are left alone, so the parent keeps working). Every
operation is retried on connection errors with backoff until
``connect_timeout_s`` has passed, then raises
:class:`~corral.errors.BrokerUnavailable`: a restarted Redis is survived by the
next call, a dead one is reported in bounded time. An outage is logged once
per process and server when it starts and once when it ends, however many
connections and threads notice it (a restart must not read as a storm of
warnings).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.connection import Connection
from redis.exceptions import AuthenticationError, RedisError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from corral.brokers.redis_options import RedisOptions
from corral.errors import BrokerError, BrokerUnavailable, ConfigError
from corral.forks import current_pid

__all__ = [
    "PendingReply",
    "RedisConnection",
    "command",
    "send_packed",
]

T = TypeVar("T")

log = logging.getLogger("corral.brokers.redis")

_FIRST_BACKOFF_S = 0.02
_MAX_BACKOFF_S = 0.5


class RedisConnection:
    """This process's Redis connections, with bounded retries and corral's errors."""

    def __init__(self, target: str | redis.Redis, options: RedisOptions) -> None:
        self._options = options
        self._connect = _connection_factory(target, options)
        self._address = _address_of(target)
        self._pid = current_pid()
        self._idle: list[tuple[Connection, bool]] = []  # (connection, it answered last time)
        self._made = 0
        self._made_lock = threading.Lock()
        self._closed = False

    def call(self, operation: Callable[[Connection], T]) -> T:
        """Run ``operation`` on one connection (see :func:`command`), retrying
        connection errors until ``connect_timeout_s``."""
        deadline = time.monotonic() + self._options.connect_timeout_s
        backoff_s = _FIRST_BACKOFF_S
        while True:
            connection, reused = self._checkout(deadline)
            try:
                result = _translated(operation, connection)
            except BrokerUnavailable as error:
                connection.disconnect()  # type: ignore[no-untyped-call]
                self._idle.append((connection, False))
                if reused:
                    # Closed while idle (a restart, an idle timeout): so are its peers.
                    self._disconnect_idle()
                    continue
                OUTAGES.lost(self._address, error)
                left_s = deadline - time.monotonic()
                if left_s < backoff_s + self._options.attempt_connect_s:
                    raise
            except BrokerError:
                self._idle.append((connection, True))  # an error reply, read whole: in step
                raise
            except BaseException:
                # Interrupted mid-reply (a timeout, a signal): unread data may follow.
                connection.disconnect()  # type: ignore[no-untyped-call]
                self._idle.append((connection, False))
                raise
            else:
                self._idle.append((connection, True))
                OUTAGES.restored(self._address)
                return result
            time.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, _MAX_BACKOFF_S)

    def begin(self, *commands: Sequence[Any]) -> PendingReply:
        """Send commands (in one write) on a connection of its own, replies unread
        (see PendingReply)."""
        deadline = time.monotonic() + self._options.connect_timeout_s
        connection, _ = self._checkout(deadline)
        pending = PendingReply(self, connection) if connection_open(connection) else None
        if pending is None:  # a new or closed connection: connect it first
            try:
                _translated(lambda c: c.connect(), connection)  # type: ignore[no-untyped-call]
            except BaseException:
                self.abandon(connection)
                raise
            pending = PendingReply(self, connection)
        pending.send(*commands)
        return pending

    def give_back(self, connection: Connection) -> None:
        """Return a connection whose every reply was read."""
        self._idle.append((connection, True))

    def abandon(self, connection: Connection) -> None:
        """Close a connection whose reply will not be read; it reconnects when next used."""
        connection.disconnect()  # type: ignore[no-untyped-call]
        self._idle.append((connection, False))

    def close(self) -> None:
        """Disconnect this process's connections; later calls raise BrokerError."""
        if self._pid == current_pid():
            self._disconnect_idle()
        self._idle = []
        self._closed = True

    def _checkout(self, deadline: float) -> tuple[Connection, bool]:
        """An idle connection (True: it is open and answered its last command) or a
        new one; while ``max_connections`` are all busy, wait for one until ``deadline``."""
        if self._closed:
            raise BrokerError("RedisBroker: the broker is closed; open a new one")
        if current_pid() != self._pid:
            # The parent's connections are dropped, not disconnected: closing their
            # sockets here would shut them down under the parent too. (A new lock:
            # the parent's may have been held by another thread at the fork.)
            self._made_lock = threading.Lock()
            self._pid, self._idle, self._made = current_pid(), [], 0
        wait_s = _FIRST_BACKOFF_S
        while True:
            try:
                return self._idle.pop()  # atomic: threads and greenlets share the list
            except IndexError:
                pass
            with self._made_lock:
                cap = self._options.max_connections
                if cap is None or self._made < cap:
                    self._made += 1
                    return self._connect(), False
            if time.monotonic() + wait_s > deadline:
                raise BrokerUnavailable(
                    f"RedisBroker: all {cap} connections are busy (max_connections={cap}); "
                    f"raise max_connections or use fewer threads or greenlets"
                )
            time.sleep(wait_s)
            wait_s = min(wait_s * 2, _MAX_BACKOFF_S)

    def _disconnect_idle(self) -> None:
        """Close every idle connection; each reconnects when next used."""
        idle, self._idle = self._idle, []
        for connection, _ in idle:
            connection.disconnect()  # type: ignore[no-untyped-call]
        self._idle.extend((connection, False) for connection, _ in idle)


class PendingReply:
    """A connection of its own with a command in flight: the caller selects on
    :meth:`fileno`, then reads the reply, may send the next command on the same
    connection, and finally releases or cancels it."""

    def __init__(self, owner: RedisConnection, connection: Connection) -> None:
        self._owner = owner
        self._connection: Connection | None = connection
        sock = getattr(connection, "_sock", None)  # redis-py keeps the socket here
        if sock is None:
            raise BrokerError("RedisBroker: this redis-py connection exposes no socket")
        self._fd: int = sock.fileno()

    def fileno(self) -> int:
        """Readable when the reply (or the connection's end) has arrived."""
        return self._fd

    def read(self) -> Any:
        """The reply. An error reply raises redis-py's ResponseError (the connection
        is still held and in step); a failed connection raises BrokerUnavailable."""
        connection = self._held()
        try:
            return connection.read_response()
        except ResponseError:
            raise
        except RedisError as error:
            self.cancel()
            raise _in_flight_error(error) from error
        except BaseException:
            self.cancel()
            raise

    def send(self, *commands: Sequence[Any]) -> None:
        """Send the next commands, in one write, on the same connection."""
        request = b"".join(pack_command(args) for args in commands)
        try:
            self._held().send_packed_command([request], check_health=False)  # type: ignore[no-untyped-call]
        except (RedisError, OSError) as error:
            self.cancel()
            raise _in_flight_error(error) from error
        except BaseException:
            self.cancel()
            raise

    def release(self) -> None:
        """Give the connection back, in step (every reply was read)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            self._owner.give_back(connection)

    def cancel(self) -> None:
        """Close the connection: a reply in flight will never be read."""
        connection, self._connection = self._connection, None
        if connection is not None:
            self._owner.abandon(connection)

    def _held(self) -> Connection:
        if self._connection is None:
            raise BrokerError("RedisBroker: this pending reply was already released")
        return self._connection


def command(connection: Connection, *args: Any) -> Any:
    """Send one command on ``connection`` and read its reply (raw RESP2 values)."""
    _send(connection, args)
    return connection.read_response()


def send_packed(connection: Connection, request: bytes) -> Any:
    """Send one command already packed in RESP and read its reply."""
    connection.send_packed_command([request], check_health=False)  # type: ignore[no-untyped-call]
    return connection.read_response()


def connection_open(connection: Connection) -> bool:
    """True when redis-py's connection has a socket."""
    return getattr(connection, "_sock", None) is not None


def _in_flight_error(error: RedisError | OSError) -> BrokerError:
    """corral's error for a failure while a PendingReply was in flight."""
    if isinstance(error, (RedisConnectionError, RedisTimeoutError, OSError)):
        return BrokerUnavailable(
            f"Redis is unreachable ({error}); check that the server runs and the URL is right"
        )
    return BrokerError(f"Redis failed a corral command: {error}")


def _send(connection: Connection, args: tuple[Any, ...]) -> None:
    request = pack_command(args)
    connection.send_packed_command([request], check_health=False)  # type: ignore[no-untyped-call]


def pack_command(args: Sequence[Any]) -> bytes:
    """One command in RESP, in one pass: redis-py's generic packing (an encoder call
    and several type checks per argument) cost a worker more CPU than the round trip
    of its scripts. Arguments are bytes, str, int or float (``repr``, as redis-py)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, int) and not isinstance(arg, bool):
            data = b"%d" % arg
        elif isinstance(arg, float):
            data = repr(arg).encode()
        elif isinstance(arg, (bytearray, memoryview)):
            data = bytes(arg)
        else:
            raise BrokerError(f"RedisBroker: cannot send {type(arg).__name__} {arg!r} to Redis")
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class OutageLog:
    """Which Redis servers this process cannot reach, to log each outage once."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}
        self._lock = threading.Lock()

    def lost(self, address: str, error: BaseException) -> None:
        """A call to ``address`` failed: log it unless this outage is already logged."""
        with self._lock:
            if address in self._since:
                return
            self._since[address] = time.monotonic()
        cause = error.__cause__ or error  # redis-py's own words; corral's repeat "unreachable"
        log.warning("Redis at %s is unreachable, retrying with backoff: %s", address, cause)

    def restored(self, address: str) -> None:
        """A call to ``address`` succeeded: log the end of its outage, if one was logged."""
        if not self._since:  # the hot path: no outage anywhere
            return
        with self._lock:
            since = self._since.pop(address, None)
        if since is not None:
            log.warning(
                "Redis at %s is reachable again after %.1fs", address, time.monotonic() - since
            )


OUTAGES = OutageLog()
"""This process's outages, shared by every broker and thread."""


def _address_of(target: str | redis.Redis) -> str:
    """``host:port/db`` (or the socket path) for log lines: never the credentials."""
    if isinstance(target, str):
        parts = urlsplit(target)
        return f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"
    kwargs = target.connection_pool.connection_kwargs
    if "path" in kwargs:
        return str(kwargs["path"])
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


def _translated(operation: Callable[[Connection], T], connection: Connection) -> T:
    """Run one attempt, turning redis-py's errors into corral's."""
    try:
        return operation(connection)
    except AuthenticationError as exc:
        raise ConfigError(
            f"Redis refused the credentials ({exc}); check the user and password in the URL"
        ) from exc
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise BrokerUnavailable(
            f"Redis is unreachable ({exc}); check that the server runs and the URL is right"
        ) from exc
    except ResponseError as exc:
        raise BrokerError(f"Redis refused a corral command: {exc}") from exc
    except RedisError as exc:
        raise BrokerError(f"Redis failed a corral command: {exc}") from exc


def _no_retry() -> Retry:
    """redis-py must not retry on its own: RedisConnection.call owns the time budget."""
    return Retry(NoBackoff(), 0)


def _connection_factory(
    target: str | redis.Redis, options: RedisOptions
) -> Callable[[], Connection]:
    """A function that makes a new (unconnected) connection to the URL or like the client's."""
    if isinstance(target, redis.Redis):
        pool = target.connection_pool
        return _factory(pool.connection_class, _kwargs_like(pool))
    if not isinstance(target, str):
        raise ConfigError(
            f"RedisBroker: expected a redis:// or rediss:// URL or a redis.Redis client, "
            f"got {type(target).__name__}"
        )
    pool = _pool_from_url(target, _url_kwargs(target, options))  # parses: fails here if bad
    return _factory(pool.connection_class, pool.connection_kwargs)


def _factory(connection_class: type[Any], kwargs: dict[str, Any]) -> Callable[[], Connection]:
    kwargs = dict(kwargs)
    return lambda: cast(Connection, connection_class(**kwargs))


def _url_kwargs(url: str, options: RedisOptions) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "socket_connect_timeout": options.attempt_connect_s,
        "socket_timeout": options.socket_timeout_s,
        "retry": _no_retry(),
        "protocol": 2,  # the scripts' replies are decoded as RESP2 arrays
    }
    if url.startswith("rediss://"):
        kwargs.update(
            ssl_ca_certs=options.tls_ca_file,
            ssl_certfile=options.tls_cert_file,
            ssl_keyfile=options.tls_key_file,
            ssl_check_hostname=options.tls_check_hostname,
        )
    return kwargs


def _pool_from_url(url: str, kwargs: dict[str, Any]) -> redis.ConnectionPool:
    if not url.startswith(("redis://", "rediss://")):
        raise ConfigError(f"RedisBroker: URL {url!r} must start with redis:// or rediss:// (TLS)")
    try:
        return redis.ConnectionPool.from_url(url, **kwargs)
    except ValueError as exc:
        raise ConfigError(f"RedisBroker: invalid URL {url!r}: {exc}") from exc


def _kwargs_like(pool: redis.ConnectionPool) -> dict[str, Any]:
    kwargs = dict(pool.connection_kwargs)
    if kwargs.get("decode_responses"):
        raise ConfigError(
            "RedisBroker: the redis.Redis client decodes responses; corral stores bytes, "
            "so pass a client made with decode_responses=False"
        )
    kwargs["retry"] = _no_retry()
    kwargs["protocol"] = 2
    # RESP3-only extras of the given client's pool would refuse a RESP2 connection.
    kwargs.pop("maint_notifications_config", None)
    kwargs.pop("oss_cluster_maint_notifications_handler", None)
    return kwargs
