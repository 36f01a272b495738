"""ProcessRef and ExitStatus against real processes."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from corral.process import ExitStatus, ProcessError, ProcessRef
from tests.helpers.procs import poll_for


@pytest.mark.parametrize("use_pidfd", [True, False])
@pytest.mark.timeout(20)
def test_ref_signals_its_process_and_reports_it_gone(use_pidfd: bool) -> None:
    proc = subprocess.Popen(["sleep", "300"])
    ref = ProcessRef.of(proc.pid, use_pidfd=use_pidfd)
    assert (ref.pidfd is not None) is use_pidfd
    assert ref.alive()
    assert ref.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == -signal.SIGTERM
    assert not ref.alive()
    assert ref.send_signal(signal.SIGTERM) is False
    ref.close()


@pytest.mark.timeout(20)
def test_start_time_ref_refuses_a_reused_pid() -> None:
    # A ref whose start time does not match /proc is a different (older) process.
    proc = subprocess.Popen(["sleep", "300"])
    try:
        real = ProcessRef.of(proc.pid, use_pidfd=False)
        stale = ProcessRef(proc.pid, start_ticks=real.start_ticks - 1)
        assert not stale.alive()
        assert stale.send_signal(signal.SIGKILL) is False
        assert proc.poll() is None  # the stranger with that pid was not touched
    finally:
        proc.kill()
        proc.wait()


def test_of_a_missing_pid_raises() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    if os.path.exists(f"/proc/{proc.pid}"):
        pytest.skip("pid was reused immediately")
    with pytest.raises(ProcessError, match=str(proc.pid)):
        ProcessRef.of(proc.pid)


@pytest.mark.timeout(20)
def test_zombie_counts_as_exited() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    ref = ProcessRef.of(pid)
    assert poll_for(lambda: not ref.alive(), timeout_s=10)
    os.waitpid(pid, 0)
    ref.close()


def test_exit_status_codes_and_descriptions() -> None:
    assert ExitStatus(1, exitcode=3).describe() == "exited 3"
    killed = ExitStatus(1, signal=signal.SIGKILL)
    assert killed.code == 137
    assert killed.describe() == "killed by SIGKILL (137)"
    assert ExitStatus.from_returncode(1, -15).code == 143
    assert ExitStatus.from_wait_status(1, 7 << 8).code == 7
    assert ExitStatus.from_wait_status(1, signal.SIGTERM).describe() == "killed by SIGTERM (143)"
