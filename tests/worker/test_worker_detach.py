"""Seed 001: a detached helper outlives its task and the worker; a plain nohup one does not."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.helpers.procs import poll_for, state_of, wait_gone
from tests.worker.conftest import WorkerEnv

pytestmark = pytest.mark.timeout(120)


def _alive(pid: int) -> bool:
    return state_of(pid) not in ("", "Z")


def test_detached_helper_survives_task_and_worker_stop_and_stays_visible(wenv: WorkerEnv) -> None:
    w = wenv.start("-c", "1")
    kept_file, plain_file = wenv.path("kept"), wenv.path("plain")
    assert wenv.module.start_helpers.delay(kept_file, plain_file).get(timeout_s=30) == "started"
    kept, plain = int(Path(kept_file).read_text()), int(Path(plain_file).read_text())
    try:
        # the nohup'd helper was not detached: it is a leftover of the task and is killed
        assert wait_gone(lambda: [plain] if _alive(plain) else [], timeout_s=10) == []
        assert _alive(kept)
        # visible in the worker's published process tree
        broker = wenv.module.app.broker

        def listed() -> bool:
            details = [json.loads(info.details) for info in broker.workers()]
            return any(kept in [d["pid"] for d in x.get("detached", [])] for x in details)

        assert poll_for(listed, timeout_s=15)
        assert w.stop() == 0
        assert _alive(kept)  # the worker's stop spared it
    finally:
        if _alive(kept):
            os.kill(kept, signal.SIGKILL)
        if _alive(plain):
            os.kill(plain, signal.SIGKILL)
