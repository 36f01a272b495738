"""A client that enqueues and never reads a result, reporting its memory growth (P6, seeds/004).

``python -m tests.apps.send_forever URL WARMUP COUNT [rss|traced]`` sends WARMUP calls,
then COUNT more, and prints how much memory the COUNT sends added as one JSON line:
``rss`` (default) the resident set size from /proc/self/statm, ``traced`` the Python
heap as tracemalloc sees it (blind to SQLite's own, bounded, page cache).
"""

from __future__ import annotations

import json
import os
import sys
import tracemalloc
from typing import Any

from corral import Corral

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """This process's current resident set size (not its peak)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_BYTES


def traced_bytes() -> int:
    """Python heap in use, as tracemalloc counts it."""
    current, _peak = tracemalloc.get_traced_memory()
    return current


def noop(n: int) -> None:
    """Never runs: no worker is started."""


def send(task: Any, count: int) -> None:
    for n in range(count):
        task.delay(n)  # the handle is dropped at once, its result never read


def main(url: str, warmup: int, count: int, measure: str) -> None:
    app = Corral(url)
    task = app.task(noop)
    send(task, warmup)
    if measure == "traced":
        tracemalloc.start()
    meter = traced_bytes if measure == "traced" else rss_bytes
    before = meter()
    send(task, count)
    after = meter()
    print(json.dumps({"measure": measure, "before": before, "after": after}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), (sys.argv[4:] or ["rss"])[0])
