"""A private ``redis-server`` for tests: free port, no persistence unless asked, reaped.

Never touches 127.0.0.1:6379 or any server the test did not start. The process
is started with ``CORRAL_TEST_ID`` set to ``marker`` (the session-wide server
uses ``session-redis``, since it outlives every single test) and is always
stopped and reaped by :meth:`RedisServer.stop`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import redis

if TYPE_CHECKING:
    from corral.brokers.base import Broker

__all__ = [
    "RedisServer",
    "TlsFiles",
    "free_port",
    "make_tls_files",
    "open_test_redis_broker",
    "redis_server_binary",
    "running_redis",
    "session_redis",
    "stop_session_redis",
    "tls_supported",
]


def redis_server_binary() -> str | None:
    """The redis-server executable on PATH, or None."""
    return shutil.which("redis-server")


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class TlsFiles:
    """Certificate files for ``--tls-port``: a CA and a server key pair signed by it."""

    ca_file: Path
    cert_file: Path
    key_file: Path


@dataclass
class RedisServer:
    """One redis-server process the test owns.

    ``password`` adds ``--requirepass``; ``acl_user`` (name, password) adds an
    ACL user allowed everything; ``persistent`` turns on the append-only file
    with ``appendfsync always`` in ``data_dir``, so a SIGKILL loses nothing
    acknowledged; ``tls`` serves TLS only, on ``port``.
    """

    port: int = field(default_factory=free_port)
    password: str | None = None
    acl_user: tuple[str, str] | None = None
    persistent: bool = False
    tls: TlsFiles | None = None
    marker: str | None = None
    data_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="corral-redis-")))
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL a broker uses to reach this server (credentials included)."""
        scheme = "rediss" if self.tls else "redis"
        if self.acl_user:
            auth = f"{self.acl_user[0]}:{self.acl_user[1]}@"
        elif self.password:
            auth = f":{self.password}@"
        else:
            auth = ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}/0"

    def command_line(self) -> list[str]:
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError("redis-server is not installed (make redis-server-installed)")
        args = [binary, "--bind", "127.0.0.1", "--save", "", "--dir", str(self.data_dir)]
        args += ["--daemonize", "no", "--loglevel", "warning"]
        args += ["--logfile", str(self.data_dir / "redis.log")]
        if self.tls:
            args += ["--port", "0", "--tls-port", str(self.port)]
            args += ["--tls-cert-file", str(self.tls.cert_file)]
            args += ["--tls-key-file", str(self.tls.key_file)]
            args += ["--tls-ca-cert-file", str(self.tls.ca_file), "--tls-auth-clients", "no"]
        else:
            args += ["--port", str(self.port)]
        if self.persistent:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        if self.acl_user:
            name, secret = self.acl_user
            args += ["--user", name, "on", f">{secret}", "~*", "&*", "+@all"]
        return args

    def start(self, *, timeout_s: float = 10.0) -> RedisServer:
        """Start the server and wait until it answers PING (or raise, after stopping it)."""
        env = dict(os.environ)
        if self.marker is not None:
            env["CORRAL_TEST_ID"] = self.marker
        self.process = subprocess.Popen(
            self.command_line(), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
        )
        if not self._wait_ping(timeout_s):
            self.stop()
            log = (self.data_dir / "redis.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"redis-server on port {self.port} did not answer PING:\n{log}")
        return self

    def client(self) -> redis.Redis:
        """A plain client for assertions (TLS and credentials handled)."""
        kwargs: dict[str, object] = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}
        if self.tls:
            kwargs.update(ssl_ca_certs=str(self.tls.ca_file), ssl_check_hostname=False)
        return redis.Redis.from_url(self.url, **kwargs)  # type: ignore[arg-type]

    def _wait_ping(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        client = self.client()
        try:
            while time.monotonic() < deadline:
                if self.process is None or self.process.poll() is not None:
                    return False
                try:
                    if client.ping():
                        return True
                except redis.exceptions.BusyLoadingError:
                    pass
                except (redis.exceptions.ConnectionError, OSError):
                    pass
                time.sleep(0.02)
            return False
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL the server (a crash) and reap it; the data directory is kept."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def stop(self, *, timeout_s: float = 10.0) -> None:
        """SIGTERM, wait (then SIGKILL), reap; nothing is saved (``--save ""``)."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout_s)

    def remove_data(self) -> None:
        """Delete the data directory (after stop)."""
        shutil.rmtree(self.data_dir, ignore_errors=True)


@contextmanager
def running_redis(**options: object) -> Iterator[RedisServer]:
    """A started private server, stopped, reaped and removed on exit."""
    server = RedisServer(**options)  # type: ignore[arg-type]
    try:
        yield server.start()
    finally:
        server.stop()
        server.remove_data()


def tls_supported() -> bool:
    """True when the installed redis-server was built with TLS (``--tls-port`` accepted)."""
    binary = redis_server_binary()
    if binary is None:
        return False
    # The config is parsed in order and the first bad directive is reported: a server
    # without TLS stops at tls-port, one with TLS at the deliberately bogus directive.
    probe = subprocess.run(
        [binary, "--tls-port", "0", "--port", "0", "--corral-no-such-directive", "x"],
        capture_output=True,
        timeout=10,
        check=False,
    )
    text = (probe.stdout + probe.stderr).decode(errors="replace")
    return "corral-no-such-directive" in text


def make_tls_files(folder: Path) -> TlsFiles:
    """A self-signed CA and a server certificate for 127.0.0.1, made with openssl."""
    ca_key, ca_cert = folder / "ca.key", folder / "ca.crt"
    key, csr, cert = folder / "server.key", folder / "server.csr", folder / "server.crt"
    run = _openssl
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=corral-ca",
        "-keyout", ca_key, "-out", ca_cert)  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", key, "-out", csr)  # fmt: skip
    ext = folder / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
        "-days", "2", "-extfile", ext, "-out", cert)  # fmt: skip
    for path in (ca_key, key):
        path.chmod(0o600)
    return TlsFiles(ca_file=ca_cert, cert_file=cert, key_file=key)


def _openssl(*args: object) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


# -- the session-wide server the broker contract suite shares ----------------------------
SESSION_MARKER = "session-redis"
_session: list[RedisServer] = []


def session_redis() -> RedisServer:
    """This test process's shared server, started on first use (skips if not installed).

    It carries ``CORRAL_TEST_ID=session-redis`` because it outlives every test;
    :func:`stop_session_redis` (a session fixture's teardown) stops it.
    """
    import pytest

    if not _session:
        if redis_server_binary() is None:
            pytest.skip("redis-server is not installed (make redis-server-installed)")
        _session.append(RedisServer(marker=SESSION_MARKER).start())
    return _session[0]


def stop_session_redis() -> None:
    """Stop and reap the shared server if it was started."""
    while _session:
        server = _session.pop()
        server.stop()
        server.remove_data()


def open_test_redis_broker(clock: object, tmp: Path) -> Broker:
    """A broker on the shared server, isolated per test by a key prefix made from ``tmp``.

    The same ``tmp`` gives the same prefix, so a second call opens another
    client of the same store. ``clock`` is ignored: Redis uses its own ``TIME``.
    """
    from corral.brokers.redis import RedisBroker

    prefix = "t" + hashlib.sha1(str(tmp).encode(), usedforsecurity=False).hexdigest()[:16]
    return RedisBroker(session_redis().url, key_prefix=prefix, worker_expiry_s=1.0)
