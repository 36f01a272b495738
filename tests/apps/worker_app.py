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
