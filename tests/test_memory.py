"""P6 flat memory: a client that enqueues forever without reading results stays flat.

seeds/004: Celery's ``AsyncResult`` had a reference cycle and a ``__del__`` and leaked
on every ``delay()``. corral's handles are plain values: no ``__del__``, no cycles,
nothing registered per task.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral import Corral, ResultHandle, Task
from tests.apps import send_forever

REPO = Path(__file__).resolve().parents[1]
MIB = 1 << 20


def grown_bytes(url: str, *, warmup: int, count: int, measure: str) -> int:
    """Run the client in a fresh process; how much ``measure`` grew over ``count`` sends."""
    command = [sys.executable, "-m", "tests.apps.send_forever", url, str(warmup), str(count)]
    run = subprocess.run(
        [*command, measure], cwd=REPO, capture_output=True, text=True, check=True, timeout=240
    )
    report = json.loads(run.stdout)
    return int(report["after"]) - int(report["before"])


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rss_stays_flat_over_50000_sends(tmp_path: Path) -> None:
    # The warm-up is 20,000 sends, not 5,000: SQLite's page cache (bounded by its
    # cache_size, 2,000 KiB) keeps filling for the first ~15,000 sends as the file
    # grows, about 1.1 MB that is a bounded cache, not memory held per task. The
    # traced test below measures the Python heap after a 5,000-send warm-up.
    growth = grown_bytes(f"sqlite:///{tmp_path}/t.db", warmup=20_000, count=50_000, measure="rss")
    assert growth <= MIB, f"RSS grew by {growth:,} bytes over 50,000 sends"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_python_heap_stays_flat_over_50000_sends(tmp_path: Path) -> None:
    growth = grown_bytes(f"sqlite:///{tmp_path}/t.db", warmup=5_000, count=50_000, measure="traced")
    assert growth <= 64 * 1024, f"the Python heap grew by {growth:,} bytes over 50,000 sends"


# -- the handle is a plain value ----------------------------------------------------------


@pytest.fixture
def noop(tmp_path: Path) -> Iterator[Task[[int], None]]:
    app = Corral(f"sqlite:///{tmp_path}/t.db")
    task = app.task(send_forever.noop)
    task.delay(0)  # open the connection and prepare statements before anything is counted
    yield task
    app.close()


def test_handle_defines_no_finalizer() -> None:
    assert not hasattr(ResultHandle, "__del__")


def test_handle_holds_only_its_id_and_app(noop: Task[[int], None]) -> None:
    handle = noop.delay(1)
    assert ResultHandle.__slots__ == ("_app", "id")
    assert not hasattr(handle, "__dict__")
    assert not hasattr(handle, "__weakref__")


def test_nothing_else_references_a_fresh_handle(noop: Task[[int], None]) -> None:
    handle = noop.delay(1)
    assert sys.getrefcount(handle) == 2  # the local variable and getrefcount's argument
    assert [r for r in gc.get_referrers(handle) if r is not sys._getframe()] == []


def test_sending_creates_no_reference_cycles(noop: Task[[int], None]) -> None:
    gc.collect()
    gc.disable()
    try:
        for n in range(2_000):
            handle = noop.delay(n)
            handle.id  # noqa: B018 - touch it, as a caller would
        handles = noop.send_many([((n,), {}) for n in range(500)])
        del handles, handle
        assert gc.collect() == 0
    finally:
        gc.enable()
    assert gc.garbage == []


def test_status_and_waiting_create_no_reference_cycles(noop: Task[[int], None]) -> None:
    handle = noop.delay(1)
    gc.collect()
    gc.disable()
    try:
        for _ in range(200):
            handle.status()
            handle.ready()
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_negative_control_the_cycle_check_sees_a_cyclic_handle() -> None:
    """The check above is not blind: a handle that points back at itself (as Celery's
    AsyncResult did through its parent, seeds/004) is found by gc.collect()."""

    class CyclicHandle:
        def __init__(self) -> None:
            self.parent = self

    gc.collect()
    gc.disable()
    try:
        for _ in range(10):
            CyclicHandle()
        assert gc.collect() >= 10
    finally:
        gc.enable()
