"""Clients of a Redis broker: gevent greenlets, flat memory, no pickle unless named."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from corral.results import TaskState
from tests.helpers.procs import poll_for
from tests.redis_worker.conftest import REPO, RedisWorkerEnv, child_env

MIB = 1 << 20


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_1000_greenlets_send_and_wait_concurrently(renv: RedisWorkerEnv) -> None:
    """seeds/004: result waiting must work under gevent (a monkey-patched client)."""
    renv.start("-c", "2")
    renv.wait_registered(1)
    run = subprocess.run(
        [sys.executable, "-m", "tests.redis_worker.gevent_client", renv.url, "1000"],
        cwd=REPO,
        env=child_env(renv.url),
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.splitlines()[-1])
    assert report == {"count": 1000, "ok": 1000, "errors": []}, report


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_client_rss_stays_flat_over_50000_sends(renv: RedisWorkerEnv) -> None:
    """P6: 50,000 ``delay()`` calls whose results are never read add <= 1 MB of RSS
    (current RSS from /proc/self/statm, in a fresh process, after a warm-up)."""
    command = [sys.executable, "-m", "tests.apps.send_forever", renv.url, "5000", "50000", "rss"]
    run = subprocess.run(
        command, cwd=REPO, env=child_env(renv.url), capture_output=True, text=True,
        timeout=240, check=True,
    )  # fmt: skip
    report = json.loads(run.stdout)
    growth = int(report["after"]) - int(report["before"])
    print(f"client RSS grew by {growth:,} bytes over 50,000 sends")
    assert growth <= MIB, f"RSS grew by {growth:,} bytes over 50,000 sends"


class Unpickled:
    """Unpickling this creates ``path``: proof that a worker ran pickle.loads."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_json_worker_dead_letters_a_pickle_body_unopened(
    renv: RedisWorkerEnv, tmp_path: Path
) -> None:
    worker = renv.start()
    marker = tmp_path / "unpickled"
    sender = renv.client(codec="pickle")  # a writer the json app does not accept
    handle = sender.send("rapp.record", Unpickled(str(marker)))
    assert pickle.loads(pickle.dumps(Unpickled(str(tmp_path / "probe")))) is not None
    assert (tmp_path / "probe").exists()  # the probe shows what unpickling would do
    broker = renv.app.broker
    assert poll_for(lambda: broker.state(handle.id) is TaskState.DEAD, timeout_s=20), worker.log()
    (letter,) = [d for d in broker.dead_letters() if d.id == handle.id]
    assert "encoded with pickle" in letter.reason, letter.reason
    assert not marker.exists(), "the worker unpickled a message from an app that accepts json"
