"""A test app for worker tests. Tests copy this file to a temporary directory as
``wapp.py`` (so a test may rewrite it, e.g. for a reload) and point it at a
temporary SQLite file through CORRAL_BROKER_URL."""

from __future__ import annotations

import os
import time
from pathlib import Path

from corral import Corral, SoftTimeLimitExceeded

VERSION = "v1"

app = Corral(os.environ["CORRAL_BROKER_URL"])


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task
def version() -> str:
    return VERSION


@app.task(lease_s=2)
def pid_then_sleep(path: str, sleep_s: float) -> int:
    """Record which pool process runs this, then sleep."""
    Path(path).write_text(str(os.getpid()))
    time.sleep(sleep_s)
    return os.getpid()


@app.task(lease_s=2)
def count_run(path: str, sleep_s: float = 0.0) -> str:
    """Append one line per run to ``path`` (to count deliveries), then sleep."""
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(sleep_s)
    return "done"


@app.task(timeout_s=1.0)
def hard_limited(sleep_s: float) -> str:
    time.sleep(sleep_s)
    return "finished"


@app.task(timeout_s=10.0, soft_timeout_s=0.5)
def soft_limited() -> str:
    try:
        time.sleep(5)
    except SoftTimeLimitExceeded:
        return "cleaned up"
    return "not interrupted"


@app.task
def unencodable_result() -> object:
    return object()


@app.task(retries=2, retry_backoff_s=0.05, retry_jitter=False)
def always_fails(n: int) -> None:
    raise KeyError(f"missing {n}")


_hoard: list[bytes] = []


@app.task
def hoard(megabytes: int) -> int:
    """Keep memory allocated in this pool process; return its pid."""
    _hoard.append(b"x" * (megabytes << 20))
    return os.getpid()


@app.task
def my_pid() -> int:
    return os.getpid()


@app.task
def sleep_then_mark(path: str, sleep_s: float) -> str:
    """Sleep, then create ``path``: its absence proves the task has not finished."""
    time.sleep(sleep_s)
    Path(path).touch()
    return "marked"


@app.task
def exit_status_of_subprocess() -> int:
    """subprocess.run inside a task must see its own child's exit status (one reaper)."""
    import subprocess

    return subprocess.run(["sh", "-c", "exit 7"], check=False).returncode


@app.task
def orphan_sleeper(pid_file: str, sleep_s: float = 300.0) -> str:
    """Leave a setsid'd, double-forked `sleep` behind (it escapes the process group)."""
    import subprocess

    subprocess.run(
        ["sh", "-c", f"setsid sh -c 'sleep {sleep_s} & echo $! > {pid_file}' &"], check=True
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if Path(pid_file).exists() and Path(pid_file).read_text().strip():
            break
        time.sleep(0.02)
    return "left a sleeper"


@app.task(leftovers="warn")
def orphan_sleeper_warn(pid_file: str) -> str:
    return orphan_sleeper.fn(pid_file)


@app.task(leftovers="keep")
def orphan_sleeper_keep(pid_file: str) -> str:
    return orphan_sleeper.fn(pid_file)


@app.task(timeout_s=1.0)
def tree_then_hang(pid_file: str) -> str:
    """Start a tree (sh wrapper + setsid grandchild), then run past the hard limit."""
    orphan_sleeper.fn(pid_file)
    time.sleep(60)
    return "unreachable"


@app.task(lease_s=5)
def tree_then_sleep(pid_file: str, sleep_s: float) -> str:
    orphan_sleeper.fn(pid_file)
    time.sleep(sleep_s)
    return "slept"


@app.task
def double_fork_grandchild_raises(marker: str) -> str:
    """Seed 000: the grandchild raises; it must never get back into the worker's loop."""
    pid = os.fork()
    if pid == 0:
        if os.fork() == 0:
            Path(marker).write_text(str(os.getpid()))
            raise RuntimeError("grandchild failed")
        os._exit(0)
    os.waitpid(pid, 0)
    time.sleep(1.0)  # let an escaped grandchild report first, if it could
    return "parent result"


@app.task
def orphan_short_children(count: int) -> int:
    """Orphan ``count`` short-lived children: they re-parent to the worker main (or PID 1)."""
    import subprocess

    for _ in range(count):
        subprocess.run(["sh", "-c", "sleep 0.05 &"], check=True)
    return count


@app.task
def start_helpers(kept_pid_file: str, plain_pid_file: str) -> str:
    """Seed 001: a helper meant to outlive the task, and a nohup'd one that is not."""
    import subprocess

    from corral import spawn

    kept = spawn(["sleep", "300"], detach=True)
    Path(kept_pid_file).write_text(str(kept.pid))
    command = f"nohup sleep 300 >/dev/null 2>&1 & echo $! > {plain_pid_file}"
    subprocess.run(["sh", "-c", command], check=True)
    return "started"


@app.task
def unwaited_children(count: int) -> list[int]:
    """Start ``count`` short children and never wait for them: once they exit they are
    zombies of the pool process until it reaps them."""
    return [os.posix_spawn("/bin/true", ["true"], dict(os.environ)) for _ in range(count)]
