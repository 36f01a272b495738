"""The launcher: fd 3 + LISTEN_PID for the exec'd program, parent-death signal, 127/126."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.errors import ConfigError
from corral.listen import listen_socket
from corral.supervisor.config import SocketConfig
from corral.supervisor.launch import EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND, launcher_argv
from corral.supervisor.sockets import open_listener
from tests.helpers.procs import poll_for, state_of

# The program: takes the passed socket the way a Python web app would, reports what it
# sees, and serves one connection.
SERVE_ONE = textwrap.dedent(
    """
    import os, socket, sys
    from corral.listen import listen_socket
    sock = listen_socket("web")
    listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    print(os.getpid(), os.environ["LISTEN_PID"], os.environ["LISTEN_FDNAMES"], listening,
          flush=True)
    conn, _ = sock.accept()
    conn.sendall(b"hello from " + str(os.getpid()).encode())
    conn.close()
    """
)

# An intermediate "supervisor": launches a sleep through the launcher, prints its pid,
# then waits to be killed by the test.
INTERMEDIATE = textwrap.dedent(
    """
    import os, subprocess, sys, time
    from corral.supervisor.launch import launcher_argv
    pdeathsig = int(sys.argv[1]) or None
    argv = launcher_argv(["sleep", "120"], parent_pid=os.getpid(), pdeathsig=pdeathsig)
    child = subprocess.Popen(argv)
    print(child.pid, flush=True)
    time.sleep(120)
    """
)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = open_listener(SocketConfig(name="web", address="127.0.0.1:0", backlog=16))
    yield sock
    sock.close()


def _stop(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait(timeout=10)


def _run(
    argv: list[str], *, env: dict[str, str] | None = None, pass_fds: tuple[int, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=30, check=False, env=env, pass_fds=pass_fds
    )


@pytest.mark.timeout(60)
def test_program_sees_listening_fd3_and_its_own_pid_in_listen_pid(
    listener: socket.socket,
) -> None:
    fd = listener.fileno()
    argv = launcher_argv(
        [sys.executable, "-c", SERVE_ONE],
        parent_pid=os.getpid(),
        pdeathsig=signal.SIGTERM,
        listen_fd=fd,
        listen_name="web",
    )
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, pass_fds=[fd])
    try:
        assert proc.stdout is not None
        pid, listen_pid, names, listening = proc.stdout.readline().split()
        # The launcher exec'd: the program has the pid Popen started, and LISTEN_PID says so.
        assert int(pid) == proc.pid == int(listen_pid)
        assert names == "web"
        assert listening == "1"
        with socket.create_connection(listener.getsockname(), timeout=10) as client:
            assert client.recv(100) == f"hello from {proc.pid}".encode()
        assert proc.wait(timeout=10) == 0
    finally:
        _stop(proc)


@pytest.mark.timeout(60)
def test_listen_fd_already_3_is_passed_as_is(listener: socket.socket) -> None:
    # Occupy fd 3 with the listener itself, the case where no dup2 is needed.
    saved = os.dup(3) if _fd_open(3) else None
    os.dup2(listener.fileno(), 3, inheritable=False)
    try:
        script = "import os, socket; s = socket.socket(fileno=3); print(s.getsockname()[1])"
        done = _run(launcher_argv([sys.executable, "-c", script], listen_fd=3), pass_fds=(3,))
    finally:
        if saved is None:
            os.close(3)
        else:
            os.dup2(saved, 3)
            os.close(saved)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == listener.getsockname()[1]


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


@pytest.mark.timeout(60)
def test_inherited_protocol_variables_are_removed_unless_passed(tmp_path: Path) -> None:
    script = (
        "import os; print([os.environ.get(k) for k in "
        "('LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES', 'NOTIFY_SOCKET')])"
    )
    env = {**os.environ, "LISTEN_FDS": "2", "LISTEN_PID": "1", "NOTIFY_SOCKET": "/x"}
    done = _run(launcher_argv([sys.executable, "-c", script]), env=env)
    assert done.stdout.strip() == "[None, None, None, None]"
    notify = tmp_path / "n.sock"
    done = _run(launcher_argv([sys.executable, "-c", script], notify_path=notify), env=env)
    assert done.stdout.strip() == f"[None, None, None, '{notify}']"


def _intermediate(pdeathsig: int) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", INTERMEDIATE, str(pdeathsig)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    sleep_pid = int(proc.stdout.readline())
    # The launcher has exec'd sleep once its command line says so.
    assert poll_for(lambda: _cmdline(sleep_pid).startswith("sleep"), timeout_s=10)
    return proc, sleep_pid


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _gone(pid: int) -> bool:
    return state_of(pid) in ("", "Z", "X")


@pytest.mark.timeout(60)
def test_pdeathsig_kills_the_program_when_its_parent_is_sigkilled() -> None:
    proc, sleep_pid = _intermediate(int(signal.SIGKILL))
    try:
        proc.kill()
        proc.wait(timeout=10)
        assert poll_for(lambda: _gone(sleep_pid), timeout_s=10)
    finally:
        _stop(proc)
        with contextlib.suppress(ProcessLookupError):
            os.kill(sleep_pid, signal.SIGKILL)


@pytest.mark.timeout(60)
def test_negative_control_without_pdeathsig_the_program_survives_its_parent() -> None:
    proc, sleep_pid = _intermediate(0)
    try:
        proc.kill()
        proc.wait(timeout=10)
        # The kernel sends the parent-death signal while the parent exits, before we could
        # reap it; a second is far more than delivery takes.
        assert not poll_for(lambda: _gone(sleep_pid), timeout_s=1.0)
        assert _cmdline(sleep_pid).startswith("sleep")
    finally:
        _stop(proc)
        with contextlib.suppress(ProcessLookupError):
            os.kill(sleep_pid, signal.SIGKILL)
    assert poll_for(lambda: _gone(sleep_pid), timeout_s=10)


@pytest.mark.timeout(60)
def test_a_parent_that_is_already_gone_means_the_program_never_starts(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    argv = launcher_argv(["touch", str(marker)], parent_pid=1, pdeathsig=signal.SIGTERM)
    done = _run(argv)
    assert done.returncode == 128 + signal.SIGTERM
    assert "parent 1 is gone" in done.stderr
    assert not marker.exists()


@pytest.mark.timeout(60)
def test_a_missing_program_exits_127_with_a_clear_message() -> None:
    done = _run(launcher_argv(["corral-no-such-program", "x"]))
    assert done.returncode == EXIT_NOT_FOUND
    assert "corral-no-such-program: command not found" in done.stderr


@pytest.mark.timeout(60)
def test_a_program_that_cannot_be_executed_exits_126(tmp_path: Path) -> None:
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\necho hi\n")
    done = _run(launcher_argv([str(script)]))
    assert done.returncode == EXIT_CANNOT_EXECUTE
    assert "cannot execute" in done.stderr


@pytest.mark.timeout(60)
def test_program_arguments_after_the_separator_are_passed_verbatim() -> None:
    args = ["--pdeathsig", "--", "-c", "--listen-fd"]
    done = _run(launcher_argv([sys.executable, "-c", "import sys; print(sys.argv[1:])", *args]))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr(args)


def test_launcher_argv_names_every_option() -> None:
    argv = launcher_argv(
        ["app", "--port", "1"],
        parent_pid=10,
        pdeathsig=signal.SIGTERM,
        listen_fd=7,
        listen_name="web",
        notify_path=Path("/run/n.sock"),
    )
    assert argv[:4] == [sys.executable, "-P", "-m", "corral.supervisor.launch"]
    assert argv[4:] == [
        "--parent-pid",
        "10",
        "--pdeathsig",
        str(int(signal.SIGTERM)),
        "--listen-fd",
        "7",
        "--listen-name",
        "web",
        "--notify-socket",
        "/run/n.sock",
        "--",
        "app",
        "--port",
        "1",
    ]


@pytest.mark.timeout(60)
def test_signal_names_are_accepted_on_the_command_line() -> None:
    launch = [sys.executable, "-m", "corral.supervisor.launch"]
    done = _run([*launch, "--pdeathsig", "TERM", "--", "true"])
    assert done.returncode == 0, done.stderr
    done = _run([*launch, "--pdeathsig", "NOPE", "--", "true"])
    assert done.returncode == 2
    assert "unknown signal 'NOPE'" in done.stderr
    done = _run([*launch, "true"])
    assert done.returncode == 2
    assert "after '--'" in done.stderr


def test_listen_socket_without_a_passed_socket_says_how_to_configure_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LISTEN_FDS", raising=False)
    with pytest.raises(ConfigError, match=r"LISTEN_FDS is not set.*socket = \"web\""):
        listen_socket()


def test_listen_socket_refuses_sockets_passed_to_another_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A forked worker inherits the environment but was not the process the socket went to.
    monkeypatch.setenv("LISTEN_FDS", "1")
    monkeypatch.setenv("LISTEN_PID", str(os.getppid()))
    with pytest.raises(ConfigError, match=f"not to this one \\({os.getpid()}\\)"):
        listen_socket()


@pytest.mark.timeout(60)
def test_listen_socket_by_name(listener: socket.socket) -> None:
    script = textwrap.dedent(
        """
        from corral.errors import ConfigError
        from corral.listen import listen_socket
        print(listen_socket().getsockname()[1], listen_socket("web").getsockname()[1])
        try:
            listen_socket("api")
        except ConfigError as exc:
            print(exc)
        """
    )
    fd = listener.fileno()
    argv = launcher_argv([sys.executable, "-c", script], listen_fd=fd, listen_name="web")
    done = _run(argv, pass_fds=(fd,))
    assert done.returncode == 0, done.stderr
    ports, error = done.stdout.splitlines()
    port = listener.getsockname()[1]
    assert ports == f"{port} {port}"
    assert "no socket of that name was passed (passed: web)" in error
    assert "socket = 'api'" in error
