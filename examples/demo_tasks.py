"""The demo's tasks: plain work, binary results, retries and a dead letter or two."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from corral import Corral

app = Corral(os.environ.get("CORRAL_BROKER_URL", "sqlite:///demo.db"))
SCRATCH = Path(os.environ.get("CORRAL_DEMO_SCRATCH", "."))


@app.task
def square(x: int) -> int:
    """Plain work."""
    return x * x


@app.task
def digest(n: int) -> bytes:
    """A binary result: it comes back as bytes, not as a string (seeds/004)."""
    return hashlib.sha256(str(n).encode()).digest()


def _count_run(name: str, n: int) -> None:
    """One line per run of a task that may retry: the demo counts retries from it."""
    with open(SCRATCH / "retrying-runs.log", "a") as f:
        f.write(f"{name} {n}\n")


@app.task(retries=2, retry_backoff_s=0.05, retry_jitter=False)
def flaky(n: int) -> int:
    """Fails on its first run, succeeds on the retry."""
    _count_run("flaky", n)
    marker = SCRATCH / f"flaky-{n}"
    if not marker.exists():
        marker.touch()
        raise ConnectionError(f"flaky({n}): transient failure, will be retried")
    return n


@app.task(retries=1, retry_backoff_s=0.05, retry_jitter=False)
def doomed(n: int) -> None:
    """Always fails: ends in the dead letters after its retry."""
    _count_run("doomed", n)
    raise ValueError(f"doomed({n}): this input can never work")
