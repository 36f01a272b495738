"""PID-1 mode (seed 003): as init of a container, the Reaper leaves no <defunct> behind."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("pid1_reaper.py")


def _run_as_pid1(mode: str) -> str:
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not installed")
    done = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, str(SCRIPT), mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0 and "unshare" in done.stderr:
        pytest.skip(f"cannot create a pid namespace here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.timeout(90)
def test_reaper_as_pid1_leaves_no_zombies() -> None:
    # codes=[3]: every Popen still saw its own exit status while PID 1 reaped orphans.
    assert _run_as_pid1("reap") == "codes=[3] zombies=0 pid=1"


@pytest.mark.timeout(90)
def test_negative_control_pid1_that_does_not_reap_leaves_zombies() -> None:
    assert _run_as_pid1("no-reap") == "codes=[3] zombies=50 pid=1"
