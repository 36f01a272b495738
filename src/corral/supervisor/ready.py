"""Ready probes: when a STARTING program instance counts as up.

The supervisor calls ``probe.check()`` on every loop tick while an instance is
STARTING, so a check is quick and never blocks for longer than about
``PROBE_TIMEOUT_S``: a loop stuck on one slow probe would delay every other
program's signals, exits and restarts. A rolling reload waits for the new
instance's probe before it stops the old one, which is why "ready" has to mean
"serving", not "the pid exists" (seed 002).

Kinds, as written in ``corral.toml``'s ``ready``:

- ``"none"``: ready at once (``start_s`` alone decides "started").
- ``"tcp:HOST:PORT"``: a TCP connect succeeds.
- ``"http:URL"``: a GET answers 2xx or 3xx.
- ``"file:PATH"``: the file exists.
- ``"notify"``: the program sends ``READY=1`` (sd_notify protocol) to the
  datagram socket the probe owns, whose path the launcher passes as
  ``NOTIFY_SOCKET``; ``corral.notify_ready()`` does it for Python apps.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import ssl
import time
import urllib.parse
from pathlib import Path

from corral.errors import ConfigError
from corral.supervisor.config import ReadySpec
from corral.supervisor.sockets import remove_stale_socket_file

__all__ = [
    "PROBE_TIMEOUT_S",
    "FileProbe",
    "HttpProbe",
    "NoProbe",
    "NotifyProbe",
    "NotifySocket",
    "ReadyProbe",
    "TcpProbe",
    "make_probe",
]

PROBE_TIMEOUT_S = 0.2
# Linux's sun_path holds 108 bytes including the terminating NUL.
_UNIX_PATH_MAX_BYTES = 107
_DATAGRAM_MAX_BYTES = 65536


class ReadyProbe:
    """Answers "is this instance ready?" without blocking the supervisor's loop."""

    def __init__(self) -> None:
        self.last_error = ""
        self.status = ""  # the program's own STATUS= text (notify probes only)

    def check(self) -> bool:
        """True once the instance is ready; quick (at most about ``PROBE_TIMEOUT_S``)."""
        raise NotImplementedError

    def describe(self) -> str:
        """What the probe waits for, for ``corral status`` ("waiting for tcp 127.0.0.1:8000")."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the probe holds (the notify socket); safe to call twice."""

    def _waiting(self, what: str) -> str:
        detail = f" ({self.last_error})" if self.last_error else ""
        return f"waiting for {what}{detail}"


class NoProbe(ReadyProbe):
    """``ready = "none"``: the instance is ready as soon as it runs."""

    def check(self) -> bool:
        """Always true."""
        return True

    def describe(self) -> str:
        """No readiness check is configured."""
        return "no ready check"


class TcpProbe(ReadyProbe):
    """``ready = "tcp:HOST:PORT"``: ready when a TCP connection is accepted."""

    def __init__(self, host: str, port: int, *, timeout_s: float = PROBE_TIMEOUT_S) -> None:
        super().__init__()
        self.host = host
        self.port = port
        self.timeout_s = timeout_s

    def check(self) -> bool:
        """Connect and close at once; a refusal or a timeout means "not yet"."""
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout_s):
                return True
        except OSError as exc:
            self.last_error = _reason(exc)
            return False

    def describe(self) -> str:
        """For example ``waiting for tcp 127.0.0.1:8000 (connection refused)``."""
        return self._waiting(f"tcp {self.host}:{self.port}")


class HttpProbe(ReadyProbe):
    """``ready = "http:URL"``: ready when a GET of the URL answers 2xx or 3xx.

    Redirects are not followed: a 3xx already proves the server is serving.
    """

    def __init__(self, url: str, *, timeout_s: float = PROBE_TIMEOUT_S) -> None:
        super().__init__()
        self.url = url
        self.timeout_s = timeout_s
        self._parts = urllib.parse.urlsplit(url)
        if not _is_http_url(self._parts):
            raise ConfigError(
                f"ready = 'http:{url}': not an http(s) URL with a host; "
                "write it like 'http:http://127.0.0.1:8000/health'"
            )

    def check(self) -> bool:
        """One GET with a short timeout; any failure means "not yet"."""
        conn = self._connection()
        try:
            return self._get(conn)
        except (OSError, http.client.HTTPException) as exc:
            self.last_error = _reason(exc)
            return False
        finally:
            conn.close()

    def describe(self) -> str:
        """For example ``waiting for http://127.0.0.1:8000/health (HTTP 503)``."""
        return self._waiting(self.url)

    def _connection(self) -> http.client.HTTPConnection:
        parts = self._parts
        if parts.scheme == "https":
            # The probe asks "does it serve?", not "is its certificate trusted?": a
            # local self-signed certificate must not keep the program STARTING forever.
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(
                parts.hostname or "", parts.port, timeout=self.timeout_s, context=context
            )
        return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=self.timeout_s)

    def _get(self, conn: http.client.HTTPConnection) -> bool:
        started = time.monotonic()
        conn.connect()
        # The timeout applies per socket operation; give the request what is left of
        # the budget so connect + send + status line stay near one timeout in total.
        remaining_s = max(0.01, self.timeout_s - (time.monotonic() - started))
        if conn.sock is not None:
            conn.sock.settimeout(remaining_s)
        target = self._parts.path or "/"
        if self._parts.query:
            target = f"{target}?{self._parts.query}"
        conn.request("GET", target, headers={"User-Agent": "corral-ready-probe"})
        status = conn.getresponse().status
        if 200 <= status < 400:
            return True
        self.last_error = f"HTTP {status}"
        return False


class FileProbe(ReadyProbe):
    """``ready = "file:PATH"``: ready when the file exists."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def check(self) -> bool:
        """A stat of the path."""
        return self.path.exists()

    def describe(self) -> str:
        """For example ``waiting for file /run/app/ready``."""
        return self._waiting(f"file {self.path}")


class NotifySocket:
    """The unix datagram socket a program sends ``READY=1`` to (sd_notify protocol).

    The supervisor creates one per instance, so a datagram's meaning is never in
    doubt, and removes it with `close`.
    """

    def __init__(self, path: Path) -> None:
        if len(os.fsencode(path)) > _UNIX_PATH_MAX_BYTES:
            raise ConfigError(
                f"notify socket path {path} is longer than {_UNIX_PATH_MAX_BYTES} bytes, "
                "the limit of a unix socket address; use a shorter runtime directory"
            )
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_socket_file(path, what="notify socket")
        self._sock: socket.socket | None = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        try:
            self._sock.bind(os.fspath(path))
        except OSError as exc:
            self.close()
            raise ConfigError(f"cannot create notify socket {path}: {_reason(exc)}") from exc

    def fileno(self) -> int:
        """The socket's fd, for a selector that wants to wake on notifications."""
        if self._sock is None:
            raise ValueError(f"notify socket {self.path} is closed")
        return self._sock.fileno()

    def receive_nowait(self) -> list[bytes]:
        """Every datagram queued now (possibly none); never blocks."""
        received: list[bytes] = []
        while self._sock is not None:
            try:
                received.append(self._sock.recv(_DATAGRAM_MAX_BYTES))
            except (BlockingIOError, InterruptedError):
                break
        return received

    def close(self) -> None:
        """Close the socket and remove its file; safe to call twice."""
        if self._sock is None:
            return
        self._sock.close()
        self._sock = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class NotifyProbe(ReadyProbe):
    """``ready = "notify"``: ready once the program has sent ``READY=1``.

    Messages are newline-separated ``KEY=VALUE`` lines; ``STATUS=`` text is kept
    in ``status`` for ``corral status``, other keys are ignored.
    """

    def __init__(self, notify_socket: NotifySocket) -> None:
        super().__init__()
        self.socket = notify_socket
        self.ready = False

    def check(self) -> bool:
        """Read what arrived since the last tick; true from the first ``READY=1`` on."""
        for datagram in self.socket.receive_nowait():
            self._apply(datagram)
        return self.ready

    def describe(self) -> str:
        """For example ``waiting for READY=1 on /run/corral/web-0.notify``."""
        if self.ready:
            return f"ready (notified){_status_suffix(self.status)}"
        return f"waiting for READY=1 on {self.socket.path}{_status_suffix(self.status)}"

    def close(self) -> None:
        """Close and remove the notify socket."""
        self.socket.close()

    def _apply(self, datagram: bytes) -> None:
        for line in datagram.decode("utf-8", "replace").splitlines():
            key, _, value = line.partition("=")
            if key == "READY" and value == "1":
                self.ready = True
            elif key == "STATUS":
                self.status = value


def make_probe(spec: ReadySpec, *, notify_path: Path | None) -> ReadyProbe:
    """The probe for one instance's ``ready`` setting.

    ``notify_path`` is where a ``"notify"`` probe creates its socket (the caller
    passes that path to the launcher as ``NOTIFY_SOCKET``); other kinds ignore it.
    Close the probe when the instance leaves STARTING or stops.
    """
    kind = spec.kind
    if kind == "none":
        return NoProbe()
    if kind == "tcp":
        return TcpProbe(spec.host, spec.port)
    if kind == "http":
        return HttpProbe(spec.url)
    if kind == "file":
        return FileProbe(Path(spec.path))
    if kind == "notify":
        if notify_path is None:
            raise ConfigError("ready = 'notify' needs a notify socket path; pass notify_path")
        return NotifyProbe(NotifySocket(notify_path))
    raise ConfigError(
        f"ready: unknown kind {kind!r}; valid kinds: none, tcp:HOST:PORT, http:URL, "
        "file:PATH, notify"
    )


def _is_http_url(parts: urllib.parse.SplitResult) -> bool:
    try:
        parts.port  # noqa: B018 - urllib checks the port only when it is read
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _status_suffix(status: str) -> str:
    return f": {status}" if status else ""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
