"""/proc helpers for tests: find marked processes, wait for them, reap zombies."""

from __future__ import annotations

import os
import time
from collections.abc import Callable


def environ_of(pid: int) -> bytes:
    """A process's initial environment (empty if it is gone or a zombie)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read()
    except OSError:
        return b""


def marked_pids(key: str, value: str) -> list[int]:
    """Live (non-zombie) processes whose environment holds ``key=value``."""
    needle = f"{key}={value}".encode()
    found = []
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        env = environ_of(int(name))
        if needle in env.split(b"\0"):
            found.append(int(name))
    return found


def state_of(pid: int) -> str:
    """The one-letter state from /proc/PID/stat ('' if gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return ""
    return data[data.rindex(b")") + 2 :].split()[0].decode()


def children_zombies() -> list[int]:
    """Reap and return this process's zombie children."""
    reaped = []
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        reaped.append(pid)
    return reaped


def wait_gone(find: Callable[[], list[int]], *, timeout_s: float) -> list[int]:
    """Poll ``find`` until it returns nothing or the deadline passes; the last answer."""
    deadline = time.monotonic() + timeout_s
    found = find()
    while found and time.monotonic() < deadline:
        time.sleep(0.05)
        found = find()
    return found


def poll_for(check: Callable[[], bool], *, timeout_s: float, interval_s: float = 0.02) -> bool:
    """Poll ``check`` until it is true; False if the deadline passes first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval_s)
    return check()


def _states_and_parents() -> list[tuple[int, str, int]]:
    """(pid, state, ppid) of every process, from /proc/PID/stat."""
    rows = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rindex(b")") + 2 :].split()
        rows.append((int(name), rest[0].decode(), int(rest[1])))
    return rows


def children_of(pid: int) -> list[int]:
    """Live (non-zombie) children of ``pid``."""
    return [p for p, state, ppid in _states_and_parents() if ppid == pid and state != "Z"]


def zombies_on_machine_under(ppid: int) -> list[int]:
    """Zombie processes whose parent is ``ppid``."""
    return [p for p, state, parent in _states_and_parents() if state == "Z" and parent == ppid]


def zombies_under(root: int) -> list[int]:
    """Zombies whose parent is ``root`` or one of its children."""
    parents = {root, *children_of(root)}
    return [p for p, state, ppid in _states_and_parents() if state == "Z" and ppid in parents]
