"""Ready probes against real servers, files and a real notifying program."""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.errors import ConfigError
from corral.listen import notify_ready
from corral.supervisor.config import ReadySpec
from corral.supervisor.launch import launcher_argv
from corral.supervisor.ready import NotifyProbe, make_probe
from tests.helpers.procs import poll_for

# Reports a status, waits for the test's go-ahead, then says READY=1, the way an app
# that warms a cache before serving would.
NOTIFIER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from corral.listen import notify_ready, _notify
    _notify("STATUS=warming up")
    go = Path(sys.argv[1])
    deadline = time.monotonic() + 30
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    print(notify_ready("serving"), flush=True)
    """
)


class _Handler(http.server.BaseHTTPRequestHandler):
    routes = {"/health": 200, "/moved": 302, "/down": 503}

    def do_GET(self) -> None:
        self.send_response(self.routes.get(self.path, 404))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""


@pytest.fixture
def http_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # pytest's tmp_path can exceed the 107-byte limit of a unix socket address.
    path = Path(tempfile.mkdtemp(prefix="corral-ready-", dir="/tmp"))
    yield path
    shutil.rmtree(path)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens on it now


def test_none_is_ready_at_once() -> None:
    probe = make_probe(ReadySpec("none"), notify_path=None)
    assert probe.check()
    assert probe.describe() == "no ready check"


def test_tcp_ready_when_a_connection_is_accepted() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        port = server.getsockname()[1]
        probe = make_probe(ReadySpec("tcp", host="127.0.0.1", port=port), notify_path=None)
        assert probe.check()


def test_tcp_not_ready_when_nothing_listens() -> None:
    port = _free_port()
    probe = make_probe(ReadySpec("tcp", host="127.0.0.1", port=port), notify_path=None)
    assert not probe.check()
    assert probe.describe() == f"waiting for tcp 127.0.0.1:{port} (connection refused)"


@pytest.mark.parametrize("path", ["/health", "/moved"])
def test_http_ready_on_2xx_and_3xx(http_port: int, path: str) -> None:
    url = f"http://127.0.0.1:{http_port}{path}"
    assert make_probe(ReadySpec("http", url=url), notify_path=None).check()


def test_http_not_ready_on_5xx(http_port: int) -> None:
    url = f"http://127.0.0.1:{http_port}/down"
    probe = make_probe(ReadySpec("http", url=url), notify_path=None)
    assert not probe.check()
    assert probe.describe() == f"waiting for {url} (HTTP 503)"


def test_http_not_ready_when_nothing_listens() -> None:
    url = f"http://127.0.0.1:{_free_port()}/health"
    probe = make_probe(ReadySpec("http", url=url), notify_path=None)
    assert not probe.check()
    assert "connection refused" in probe.describe()


@pytest.mark.timeout(30)
def test_http_not_ready_when_the_server_never_answers() -> None:
    # A listening socket nobody accepts from: the connection completes in the kernel's
    # backlog, the request is never read, so the probe must give up on its own.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/health"
        probe = make_probe(ReadySpec("http", url=url), notify_path=None)
        assert not probe.check()
        assert "timed out" in probe.describe()


def test_file_ready_once_it_exists(tmp_path: Path) -> None:
    marker = tmp_path / "ready"
    probe = make_probe(ReadySpec("file", path=str(marker)), notify_path=None)
    assert not probe.check()
    assert probe.describe() == f"waiting for file {marker}"
    marker.touch()
    assert probe.check()


@pytest.mark.timeout(60)
def test_notify_ready_only_after_the_program_sends_ready(short_dir: Path) -> None:
    notify_path = short_dir / "web-0.notify"
    go = short_dir / "go"
    probe = make_probe(ReadySpec("notify"), notify_path=notify_path)
    argv = launcher_argv([sys.executable, "-c", NOTIFIER, str(go)], notify_path=notify_path)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        # The program runs and has told us its status, but has not said READY=1 yet.
        assert poll_for(lambda: probe.check() or probe.status != "", timeout_s=20)
        assert probe.status == "warming up"
        assert not probe.check()
        assert probe.describe() == f"waiting for READY=1 on {notify_path}: warming up"
        go.touch()
        assert poll_for(probe.check, timeout_s=20)
        assert probe.status == "serving"
        assert proc.communicate(timeout=20)[0].strip() == "True"
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=10)
        probe.close()
    assert not notify_path.exists()


def test_notify_ignores_other_messages(short_dir: Path) -> None:
    probe = make_probe(ReadySpec("notify"), notify_path=short_dir / "n.sock")
    assert isinstance(probe, NotifyProbe)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"READY=0\nMAINPID=1\nSTATUS=loading", str(probe.socket.path))
        assert poll_for(lambda: probe.check() or probe.status != "", timeout_s=5)
        assert not probe.check()
        assert probe.status == "loading"
    finally:
        probe.close()
        probe.close()  # twice is fine


def test_notify_replaces_a_stale_socket_but_not_other_files(short_dir: Path) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(str(short_dir / "stale.sock"))
    stale.close()
    make_probe(ReadySpec("notify"), notify_path=short_dir / "stale.sock").close()
    (short_dir / "file").write_text("keep")
    with pytest.raises(ConfigError, match="not a socket"):
        make_probe(ReadySpec("notify"), notify_path=short_dir / "file")
    assert (short_dir / "file").read_text() == "keep"


def test_notify_needs_a_path() -> None:
    with pytest.raises(ConfigError, match="notify_path"):
        make_probe(ReadySpec("notify"), notify_path=None)


def test_notify_rejects_a_path_too_long_for_a_unix_socket(short_dir: Path) -> None:
    with pytest.raises(ConfigError, match="longer than 107 bytes"):
        make_probe(ReadySpec("notify"), notify_path=short_dir / ("x" * 120))


def test_notify_ready_is_false_outside_a_supervisor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify_ready() is False
    monkeypatch.setenv("NOTIFY_SOCKET", f"/tmp/corral-no-such-dir-{os.getpid()}/n.sock")
    assert notify_ready() is False


@pytest.mark.parametrize("url", ["ftp://host/x", "http://", "http://host:99999/"])
def test_a_bad_http_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="not an http"):
        make_probe(ReadySpec("http", url=url), notify_path=None)
