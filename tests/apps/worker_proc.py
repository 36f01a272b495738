"""Start a real worker on a test app and stop it the way an operator would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from corral import Corral
from tests.helpers.procs import poll_for

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def running_worker(
    app: Corral, log_path: Path, *, app_ref: str = "tests.apps.api_worker:app"
) -> Iterator[subprocess.Popen[bytes]]:
    """A one-process worker for ``app_ref`` on ``app``'s broker, registered before it yields.

    On exit it gets SIGTERM (a warm stop) and must exit 0; its log is in ``log_path``.
    """
    env = {**os.environ, "CORRAL_BROKER_URL": app.broker_url, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "corral.cli.main", "worker", app_ref, "-c", "1"]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=log)
    try:
        # Registered means its signal handlers are in place: a TERM now is a warm stop.
        if not poll_for(
            lambda: bool(app.broker.workers()) or proc.poll() is not None, timeout_s=30
        ):
            raise AssertionError(f"worker did not register in 30 s:\n{log_path.read_text()}")
        if proc.poll() is not None:
            raise AssertionError(f"worker exited {proc.returncode}:\n{log_path.read_text()}")
        yield proc
    finally:
        _stop(proc, log_path)


def _stop(proc: subprocess.Popen[bytes], log_path: Path) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"worker ignored SIGTERM for 30 s:\n{log_path.read_text()}") from None
    assert code == 0, f"worker exited {code}:\n{log_path.read_text()}"
