"""The worker as PID 1 of a new pid namespace (a container): it reaps everything (seed 003)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import pytest

from tests.helpers.procs import children_of, poll_for, zombies_under
from tests.worker.conftest import WorkerEnv

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare"),
]


def _start_as_pid1(wenv: WorkerEnv) -> tuple[subprocess.Popen[bytes], int]:
    command = [
        "unshare", "--pid", "--fork", "--mount-proc",
        sys.executable, "-m", "corral.cli.main", "worker", "wapp:app", "-c", "2",
        "--containment", wenv.containment,
    ]  # fmt: skip
    log = open(wenv.workdir / "pid1.log", "wb")  # noqa: SIM115 - closed by the caller's wait
    outer = subprocess.Popen(command, cwd=wenv.workdir, env=wenv.env, stdout=log, stderr=log)
    assert poll_for(lambda: len(children_of(outer.pid)) == 1, timeout_s=20)
    [worker_main] = children_of(outer.pid)
    return outer, worker_main


@pytest.mark.parametrize("reaping", ["on", "off"])
def test_pid1_worker_leaves_no_defunct_processes(wenv: WorkerEnv, reaping: str) -> None:
    if reaping == "off":
        wenv.env["CORRAL_UNSAFE_NO_ORPHAN_REAPING"] = "1"
    outer, worker_main = _start_as_pid1(wenv)
    try:
        handles = [wenv.module.orphan_short_children.delay(3) for _ in range(50)]
        assert [h.get(timeout_s=60) for h in handles] == [3] * 50
        if reaping == "on":
            assert poll_for(lambda: not zombies_under(worker_main), timeout_s=10), (
                zombies_under(worker_main)
            )
        else:
            # Negative control: as PID 1 without reaping, the orphans stay <defunct>.
            assert poll_for(lambda: len(zombies_under(worker_main)) >= 100, timeout_s=10)
    finally:
        os.kill(worker_main, signal.SIGTERM)
        outer.wait(timeout=30)
    # PID 1 exiting takes its whole namespace with it; nothing is left either way.
    assert not children_of(worker_main)
