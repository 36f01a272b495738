"""The control socket of ``corral run``: one JSON request per connection, one JSON answer.

A unix socket with mode 0600 (only its owner may control the supervisor). A
second ``corral run`` that finds the socket answering refuses to start. An
answer may come long after the request: ``reload`` answers once no process of
an older generation remains, ``stop`` once the units are empty.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
from pathlib import Path
from typing import Any

from corral.errors import ConfigError, SupervisorUnavailable

__all__ = ["Connection", "ControlServer", "request"]

MAX_REQUEST_BYTES = 64 * 1024


class ControlServer:
    """The listening control socket, bound with mode 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path
        _refuse_if_answering(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # stale: nothing answered on it
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket is born 0600: no window where others connect
        try:
            self._socket.bind(str(path))
        finally:
            os.umask(old_umask)
        self._socket.listen(16)
        self._socket.setblocking(False)

    def fileno(self) -> int:
        """For the supervisor's selector."""
        return self._socket.fileno()

    def accept(self) -> Connection | None:
        """A new client, if one is waiting."""
        try:
            client, _ = self._socket.accept()
        except BlockingIOError:
            return None
        return Connection(client)

    def close(self) -> None:
        """Stop listening and remove the socket file."""
        self._socket.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class Connection:
    """One client: read its request line, answer once, close."""

    def __init__(self, client: socket.socket) -> None:
        client.setblocking(False)
        self._socket = client
        self._buffer = b""
        self.request: dict[str, Any] | None = None

    def fileno(self) -> int:
        """For the supervisor's selector."""
        return self._socket.fileno()

    def read(self) -> bool:
        """Read what arrived; True once a whole request line is in ``request``."""
        try:
            data = self._socket.recv(4096)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            self.request = {"command": "", "error": "client closed the connection"}
            return True
        self._buffer += data
        if b"\n" not in self._buffer and len(self._buffer) < MAX_REQUEST_BYTES:
            return False
        line = self._buffer.split(b"\n", 1)[0]
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("not an object")
            self.request = request
        except ValueError as error:
            self.request = {"command": "", "error": f"bad request: {error}"}
        return True

    def answer(self, response: dict[str, Any]) -> None:
        """Send the answer and close (a client that left is ignored)."""
        data = json.dumps(response).encode() + b"\n"
        try:
            self._socket.setblocking(True)
            self._socket.settimeout(5.0)
            self._socket.sendall(data)
        except OSError:
            pass
        finally:
            self._socket.close()


def request(
    path: Path, command: str, args: dict[str, Any] | None = None, *, timeout_s: float | None
) -> dict[str, Any]:
    """Send one request to the ``corral run`` listening at ``path`` and return its answer."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(timeout_s)
    try:
        client.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError) as error:
        client.close()
        raise SupervisorUnavailable(
            f"no corral run answers on {path} ({error.strerror}); start one with `corral run`"
        ) from None
    try:
        client.sendall(json.dumps({"command": command, "args": args or {}}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = client.recv(65536)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        raise SupervisorUnavailable(
            f"corral run on {path} did not answer within {timeout_s}s"
        ) from None
    finally:
        client.close()
    if not data:
        raise SupervisorUnavailable(f"corral run on {path} closed the connection without answering")
    answer: dict[str, Any] = json.loads(data)
    return answer


def _refuse_if_answering(path: Path) -> None:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ECONNREFUSED):
            return
        raise ConfigError(f"control socket {path}: {error.strerror}") from None
    finally:
        probe.close()
    raise ConfigError(
        f"another corral run is already using the control socket {path}; stop it with "
        f"`corral ctl shutdown`, or set control_socket in [corral] to run a second one"
    )
