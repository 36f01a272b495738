"""What a program run by ``corral run`` uses to talk to its supervisor.

- `listen_socket`: the listening socket ``corral run`` opened for it, passed with
  systemd's ``LISTEN_FDS`` protocol. Serving on it instead of binding its own
  port is what lets a rolling reload drop no connection: old and new instances
  accept from the same kernel queue.
- `notify_ready`: tell the supervisor the program is ready to serve
  (``ready = "notify"``), with systemd's sd_notify protocol.

Both also work under systemd itself. Nothing is read at import time.
"""

from __future__ import annotations

import os
import socket

from corral.errors import ConfigError

__all__ = ["listen_socket", "notify_ready"]

_LISTEN_FDS_START = 3

_HOW_TO_CONFIGURE = (
    'declare the socket in corral.toml ([socket.web] address = "127.0.0.1:8000"), '
    'set socket = "web" in the [program.NAME] that runs this app, and start it with '
    "`corral run`"
)


def listen_socket(name: str | None = None) -> socket.socket:
    """The listening socket ``corral run`` passed to this process.

    ``name`` picks one by its ``[socket.NAME]`` when several were passed; without
    it there must be exactly one. Each call returns a new socket object on a
    duplicate of the passed fd, so closing one does not close the others.

    Several instances (and, during a reload, two generations) wait on the same
    socket and only one wins each connection: serve it non-blocking
    (``sock.setblocking(False)``) or from a select loop, or an instance that lost
    the race hangs in ``accept()`` and cannot hear a stop.

    Raises `ConfigError`, saying how to configure one, when no socket was passed
    (or it was passed to another process, such as this one's parent).
    """
    fds = _passed_fds()
    names = _passed_names(len(fds))
    fd = _pick(fds, names, name)
    # Like sd_listen_fds(): children this process starts must not inherit it.
    os.set_inheritable(fd, False)
    return socket.socket(fileno=os.dup(fd))


def notify_ready(status: str = "") -> bool:
    """Tell the supervisor this program is ready (``READY=1``), with an optional status line.

    Returns False, doing nothing, when not run under a supervisor that asked for it
    (``NOTIFY_SOCKET`` unset), or when the message cannot be delivered: a readiness
    notice must never be what crashes the program.
    """
    lines = ["READY=1"]
    if status:
        lines.append(f"STATUS={status.replace(chr(10), ' ')}")
    return _notify("\n".join(lines))


def _notify(message: str) -> bool:
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # a Linux abstract socket, as systemd writes it
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode(), address)
    except OSError:
        return False
    return True


def _passed_fds() -> list[int]:
    count_text = os.environ.get("LISTEN_FDS", "")
    if not count_text:
        raise ConfigError(
            "corral.listen_socket(): no socket was passed to this process (LISTEN_FDS is "
            f"not set); {_HOW_TO_CONFIGURE}"
        )
    pid_text = os.environ.get("LISTEN_PID", "")
    if pid_text != str(os.getpid()):
        raise ConfigError(
            f"corral.listen_socket(): the sockets in LISTEN_FDS were passed to process "
            f"{pid_text or '(LISTEN_PID unset)'}, not to this one ({os.getpid()}); call it "
            "in the process corral run started and share the socket with forked workers"
        )
    if not count_text.isdigit() or int(count_text) < 1:
        raise ConfigError(f"corral.listen_socket(): LISTEN_FDS={count_text!r} is not a count")
    return list(range(_LISTEN_FDS_START, _LISTEN_FDS_START + int(count_text)))


def _passed_names(count: int) -> list[str]:
    names = os.environ.get("LISTEN_FDNAMES", "").split(":")
    return names if len(names) == count else [""] * count


def _pick(fds: list[int], names: list[str], name: str | None) -> int:
    if name is None:
        if len(fds) == 1:
            return fds[0]
        raise ConfigError(
            f"corral.listen_socket(): {len(fds)} sockets were passed "
            f"({', '.join(names)}); pass name= to choose one"
        )
    if name in names:
        return fds[names.index(name)]
    if len(fds) == 1 and not names[0]:
        return fds[0]  # one socket passed without a name: it can only be this one
    passed = ", ".join(n for n in names if n) or "one without a name"
    raise ConfigError(
        f"corral.listen_socket({name!r}): no socket of that name was passed (passed: "
        f"{passed}); set socket = {name!r} in this program's section of corral.toml"
    )
