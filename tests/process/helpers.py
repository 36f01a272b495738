"""Small shared helpers for the process tests (pid files, shell snippets)."""

from __future__ import annotations

import os
import signal
from contextlib import suppress
from pathlib import Path

from tests.helpers.procs import poll_for, state_of


def read_pid(path: Path, *, timeout_s: float = 10.0) -> int:
    """Wait for a shell to write a pid into ``path`` and return it."""
    assert poll_for(lambda: path.exists() and path.read_text().strip() != "", timeout_s=timeout_s)
    return int(path.read_text().split()[0])


def read_setsid_pid(path: Path, *, timeout_s: float = 10.0) -> int:
    """The pid of DOUBLE_FORK_SETSID's grandchild, once it runs ``sleep`` in its own session."""
    pid = read_pid(path, timeout_s=timeout_s)
    assert poll_for(lambda: _session_leader_sleeping(pid), timeout_s=timeout_s)
    return pid


def _session_leader_sleeping(pid: int) -> bool:
    try:
        return os.getsid(pid) == pid and Path(f"/proc/{pid}/comm").read_text() == "sleep\n"
    except (OSError, ProcessLookupError):
        return False


def alive(pid: int) -> bool:
    """Running (not a zombie, not gone)."""
    return state_of(pid) not in ("", "Z", "X")


def kill_pid(pid: int) -> None:
    """SIGKILL a pid this test started itself (cleanup of negative controls)."""
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def ppid_of(pid: int) -> int:
    """The parent pid (-1 if gone)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return -1
    return int(data[data.rindex(b")") + 2 :].split()[1])


# sh snippets. `setsid sleep` in a background subshell is not a group leader, so setsid
# does not fork and $! is the sleep's pid; the subshell exits: a setsid'd double fork.
DOUBLE_FORK_SETSID = "(setsid sleep 300 & echo $! > {pidfile}); exec sleep 300"
