"""Redis going away under real workers and clients: a crash and restart, no server at all.

A restarted server keeps what it acknowledged (append-only file, fsync always); workers
and clients reconnect with backoff, say so once in their logs, and lose no task.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path

import pytest

from corral.errors import BrokerUnavailable
from corral.results import ResultHandle
from tests.apps.redis_app import make_app
from tests.helpers.procs import poll_for
from tests.helpers.redis_server import RedisServer, free_port
from tests.redis_worker.conftest import RedisWorkerEnv

OUTAGE_S = 0.5
LOST = "is unreachable, retrying with backoff"
BACK = "is reachable again after"


class Sender(threading.Thread):
    """A client sending ``count`` tasks, one every few milliseconds, through an outage."""

    def __init__(self, renv: RedisWorkerEnv, folder: Path, count: int) -> None:
        super().__init__(name="sender", daemon=True)
        self.renv, self.folder, self.count = renv, folder, count
        self.handles: list[ResultHandle[str]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for n in range(self.count):
                path = str(self.folder / f"task-{n}")
                self.handles.append(self.renv.app.send("rapp.log_run", path, 0.02))
                time.sleep(0.005)  # a steady trickle, so the outage falls mid-stream
        except BaseException as error:  # reported by the test, not lost in the thread
            self.error = error


def run_counts(folder: Path, count: int) -> list[int]:
    """How many times each task ran (lines in its file; 0 if it never ran)."""
    counts = []
    for n in range(count):
        path = folder / f"task-{n}"
        counts.append(len(path.read_text().split()) if path.exists() else 0)
    return counts


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_redis_restarted_mid_run_loses_no_task(
    renv: RedisWorkerEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="corral.brokers.redis")
    worker = renv.start("-c", "2")
    renv.wait_registered(1)
    folder, count = renv.folder("runs"), 300
    sender = Sender(renv, folder, count)
    sender.start()
    assert poll_for(lambda: len(sender.handles) >= 100, timeout_s=30)
    renv.server.kill()  # SIGKILL mid-stream: tasks queued, leased, running, being sent
    time.sleep(OUTAGE_S)  # the outage itself, not a synchronisation
    renv.server.start()
    sender.join(timeout=60)
    assert sender.error is None, sender.error
    assert [h.get(timeout_s=60) for h in sender.handles] == ["done"] * count

    counts = run_counts(folder, count)
    twice = [n for n, c in enumerate(counts) if c > 1]
    print(f"runs per task: {dict(sorted({c: counts.count(c) for c in counts}.items()))}")
    assert min(counts) == 1, "a task was lost"
    # At-least-once: only a task running when Redis died may run again (2 pool processes).
    assert max(counts) <= 2 and len(twice) <= 2, twice

    log = worker.log()
    assert worker.process.poll() is None, log
    assert log.count(LOST) == 1 and log.count(BACK) == 1, log
    assert "Traceback" not in log
    client_lines = [r.getMessage() for r in caplog.records]
    assert sum(LOST in line for line in client_lines) == 1, client_lines
    assert sum(BACK in line for line in client_lines) == 1, client_lines
    assert worker.stop() == 0


@pytest.mark.timeout(30)
def test_send_to_an_unreachable_redis_raises_within_connect_timeout() -> None:
    app = make_app(f"redis://127.0.0.1:{free_port()}/0")  # default connect_timeout_s=5
    started = time.monotonic()
    try:
        with pytest.raises(BrokerUnavailable, match="check that the server runs"):
            app.send("rapp.noop", 1)
    finally:
        app.close()
    elapsed_s = time.monotonic() - started
    print(f"BrokerUnavailable after {elapsed_s:.2f}s (connect_timeout_s=5)")
    assert elapsed_s <= 5.0 + 1.0


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_a_worker_started_before_redis_waits_for_it(renv: RedisWorkerEnv) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0?connect_timeout_s=1"
    worker = renv.start(url=url)
    assert poll_for(lambda: worker.log().count("unreachable at start") >= 2, timeout_s=30)
    assert worker.process.poll() is None, worker.log()
    late = RedisServer(port=port, data_dir=renv.workdir / "late")
    late.data_dir.mkdir()
    late.start()
    try:
        client = renv.client(url=url)
        assert client.send("rapp.noop", 7).get(timeout_s=30) == 7
        assert worker.stop() == 0
    finally:
        late.stop()
    assert "Traceback" not in worker.log()


@pytest.mark.timeout(60)
def test_a_worker_waiting_for_redis_stops_on_sigterm(renv: RedisWorkerEnv) -> None:
    worker = renv.start(url=f"redis://127.0.0.1:{free_port()}/0?connect_timeout_s=1")
    assert worker.wait_log("unreachable at start")
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout_s=15) == 0
    assert "stopped before the broker could be reached" in worker.log()
