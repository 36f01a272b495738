"""Listening sockets that ``corral run`` opens once and hands to program instances.

The supervisor, not the program, owns a ``[socket.NAME]``: it binds it before the
first instance starts and keeps it open across restarts, and the launcher makes
it each instance's fd 3 (systemd's ``LISTEN_FDS`` protocol). During a rolling
reload the old and the new instance accept on the same socket, so the kernel's
queue holds new connections while one of them is not accepting and none is
refused.

Addresses: ``"HOST:PORT"`` (``"127.0.0.1:8000"``, ``"[::1]:8000"``,
``"0.0.0.0:8000"`` for every IPv4 address) or ``"unix:/path"``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from pathlib import Path

from corral.errors import ConfigError
from corral.supervisor.config import SocketConfig

__all__ = ["close_listener", "open_listener"]

_UNIX_PREFIX = "unix:"

_BIND_ADVICE = {
    errno.EADDRINUSE: "another process is listening on it; stop it or choose another address",
    errno.EACCES: "permission denied; ports below 1024 need root or CAP_NET_BIND_SERVICE, "
    "and a unix socket needs a writable directory",
    errno.EADDRNOTAVAIL: "that address is not one of this machine's; use 0.0.0.0, :: or a "
    "local address",
    errno.ENOENT: "its directory does not exist; create it first",
}


def open_listener(config: SocketConfig) -> socket.socket:
    """Bind and listen on ``config.address`` with ``config.backlog``; non-inheritable.

    Raises `ConfigError` naming the socket and the address when it cannot bind.
    """
    path = config.unix_path()
    sock = _bind_unix(config, Path(path)) if path is not None else _bind_tcp(config)
    try:
        sock.listen(config.backlog)
    except OSError as exc:
        sock.close()
        raise _bind_error(config, exc) from exc
    # The launcher dup2()s it to the child's fd 3; nothing else may inherit it.
    sock.set_inheritable(False)
    return sock


def close_listener(sock: socket.socket, config: SocketConfig) -> None:
    """Close a listener and remove its unix socket file, if it has one."""
    sock.close()
    path = config.unix_path()
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _bind_tcp(config: SocketConfig) -> socket.socket:
    host, port = config.host_port()
    try:
        # No host (":8000") with AI_PASSIVE is the IPv4 wildcard address.
        infos = socket.getaddrinfo(
            host or "0.0.0.0", port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ConfigError(
            f"[socket.{config.name}] address = {config.address!r}: cannot resolve "
            f"{host!r} ({exc.strerror}); use an IP address or a resolvable name"
        ) from exc
    family, socktype, proto, _, sockaddr = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        # Without it a restarted supervisor cannot bind while old connections sit in
        # TIME_WAIT, and a restart would fail for a minute.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
    except OSError as exc:
        sock.close()
        raise _bind_error(config, exc) from exc
    return sock


def _bind_unix(config: SocketConfig, path: Path) -> socket.socket:
    _remove_stale_unix_socket(config, path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(os.fspath(path))
    except OSError as exc:
        sock.close()
        raise _bind_error(config, exc) from exc
    return sock


def _remove_stale_unix_socket(config: SocketConfig, path: Path) -> None:
    """Remove a socket file nobody listens on; refuse a live one or a non-socket."""
    what = f"[socket.{config.name}] address = {config.address!r}"
    if not _is_socket_file(path, what=what):
        return
    if _someone_listens(path):
        raise ConfigError(
            f"{what}: another process is listening on {path}; stop it or choose another path"
        )
    path.unlink()


def remove_stale_socket_file(path: Path, *, what: str) -> None:
    """Remove a unix socket file left by an earlier run; refuse to delete anything else."""
    if _is_socket_file(path, what=what):
        path.unlink()


def _is_socket_file(path: Path, *, what: str) -> bool:
    """False if nothing is there; ConfigError if something that is not a socket is."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(mode):
        raise ConfigError(
            f"{what}: {path} exists and is not a socket; remove it or choose another path"
        )
    return True


def _someone_listens(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(0.5)
        probe.connect(os.fspath(path))
    except OSError as exc:
        # Refused (no listener) is the stale case; anything else (a full backlog,
        # no permission to connect) means we cannot tell, so do not delete.
        return exc.errno != errno.ECONNREFUSED
    finally:
        probe.close()
    return True


def _bind_error(config: SocketConfig, exc: OSError) -> ConfigError:
    advice = _BIND_ADVICE.get(exc.errno or 0, exc.strerror or str(exc))
    return ConfigError(f"[socket.{config.name}] cannot listen on {config.address!r}: {advice}")
