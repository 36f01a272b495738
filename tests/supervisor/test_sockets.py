"""Listening sockets: TCP v4/v6 and unix, stale files, clear errors naming the socket."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.errors import ConfigError
from corral.supervisor.config import SocketConfig
from corral.supervisor.sockets import close_listener, open_listener


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # pytest's tmp_path can exceed the 107-byte limit of a unix socket address.
    path = Path(tempfile.mkdtemp(prefix="corral-sock-", dir="/tmp"))
    yield path
    shutil.rmtree(path)


def _config(address: str, *, name: str = "web", backlog: int = 8) -> SocketConfig:
    return SocketConfig(name=name, address=address, backlog=backlog)


def test_tcp_listener_accepts_and_is_not_inheritable() -> None:
    sock = open_listener(_config("127.0.0.1:0"))
    try:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
        assert not sock.get_inheritable()
        with socket.create_connection(sock.getsockname(), timeout=5):
            conn, _ = sock.accept()
            conn.close()
    finally:
        sock.close()


def test_ipv6_listener() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")
    try:
        sock = open_listener(_config("[::1]:0"))
    except ConfigError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    try:
        assert sock.family == socket.AF_INET6
        with socket.create_connection(sock.getsockname()[:2], timeout=5):
            pass
    finally:
        sock.close()


def test_a_port_in_use_is_a_config_error_naming_socket_and_address() -> None:
    first = open_listener(_config("127.0.0.1:0"))
    try:
        address = f"127.0.0.1:{first.getsockname()[1]}"
        with pytest.raises(ConfigError) as caught:
            open_listener(_config(address, name="api"))
        message = str(caught.value)
        assert "[socket.api]" in message
        assert address in message
        assert "another process is listening" in message
    finally:
        first.close()


def test_a_privileged_port_is_a_config_error_for_non_root() -> None:
    """Run as an unprivileged user (the tests run as root, which may bind port 80)."""
    code = (
        "from corral.errors import ConfigError\n"
        "from corral.supervisor.config import SocketConfig\n"
        "from corral.supervisor.sockets import open_listener\n"
        "try:\n"
        "    open_listener(SocketConfig(name='web', address='127.0.0.1:80'))\n"
        "except ConfigError as e:\n"
        "    print(e)\n"
    )
    command = [sys.executable, "-c", code]
    if os.geteuid() == 0:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)
    assert "CAP_NET_BIND_SERVICE" in done.stdout, done.stdout + done.stderr


def test_an_unresolvable_host_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"\[socket.web\].*cannot resolve"):
        open_listener(_config("no-such-host.invalid:8000"))


def test_unix_listener_and_close_removes_the_file(short_dir: Path) -> None:
    path = short_dir / "web.sock"
    config = _config(f"unix:{path}")
    sock = open_listener(config)
    try:
        assert sock.family == socket.AF_UNIX
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(path))
    finally:
        close_listener(sock, config)
    assert not path.exists()


def test_a_stale_unix_socket_file_is_replaced(short_dir: Path) -> None:
    path = short_dir / "stale.sock"
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(path))
    dead.close()  # the file stays behind, with nobody listening: a crashed previous run
    assert path.exists()
    config = _config(f"unix:{path}")
    sock = open_listener(config)
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(path))
    finally:
        close_listener(sock, config)


def test_a_live_unix_socket_is_refused_and_left_alone(short_dir: Path) -> None:
    path = short_dir / "live.sock"
    live = socket.socket(socket.AF_UNIX)
    live.bind(str(path))
    live.listen(1)
    try:
        with pytest.raises(ConfigError, match="another process is listening"):
            open_listener(_config(f"unix:{path}"))
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(path))  # still the original listener's
    finally:
        live.close()


def test_a_file_that_is_not_a_socket_is_never_deleted(short_dir: Path) -> None:
    path = short_dir / "data.txt"
    path.write_text("precious")
    with pytest.raises(ConfigError, match="not a socket"):
        open_listener(_config(f"unix:{path}"))
    assert path.read_text() == "precious"


def test_a_missing_unix_socket_directory_is_a_config_error(short_dir: Path) -> None:
    with pytest.raises(ConfigError, match="directory does not exist"):
        open_listener(_config(f"unix:{short_dir}/missing/web.sock"))
