"""The Reaper: records every exit, reaps orphans, never steals from subprocess.Popen."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from corral.process import ProcessError, ProcessRef, Reaper, prctl
from tests.helpers.procs import poll_for, zombies_on_machine_under
from tests.process.helpers import read_pid

RUNS = 60


def _run_exit_7_many_times() -> list[int]:
    return [subprocess.run(["sh", "-c", "exit 7"], check=False).returncode for _ in range(RUNS)]


def _in_background(loop: Callable[[], object]) -> Iterator[None]:
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            loop()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


@pytest.mark.timeout(60)
def test_popen_still_sees_its_exit_code_while_the_reaper_loops(reaper: Reaper) -> None:
    # A thread reaps in a tight loop while the main thread runs commands through Popen.
    for _ in _in_background(reaper.reap_nowait):
        codes = _run_exit_7_many_times()
    assert codes == [7] * RUNS


@pytest.mark.timeout(60)
def test_negative_control_a_waitpid_minus_1_loop_steals_popen_statuses() -> None:
    # The bug P3 bans: with a waitpid(-1) reaper, Popen gets ECHILD and reports 0.
    def steal() -> None:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(-1, os.WNOHANG)

    for _ in _in_background(steal):
        codes = _run_exit_7_many_times()
    assert any(code == 0 for code in codes), "expected at least one stolen exit status"


@pytest.mark.timeout(60)
def test_sigchld_driven_reaper_leaves_popen_alone(reaper: Reaper) -> None:
    reaper.install_sigchld()
    fork_ref = _fork_exit(3, reaper)
    codes = []
    for _ in range(RUNS):
        codes.append(subprocess.run(["sh", "-c", "exit 7"], check=False).returncode)
        if reaper.wait_sigchld(timeout_s=0):
            reaper.reap_nowait()
    assert codes == [7] * RUNS
    assert reaper.wait_exit(fork_ref, timeout_s=10).describe() == "exited 3"


def _fork_exit(code: int, reaper: Reaper) -> ProcessRef:
    with reaper.spawning():
        pid = os.fork()
        if pid == 0:
            os._exit(code)
        return reaper.watch_pid(pid)


@pytest.mark.timeout(30)
def test_watched_children_statuses_are_recorded(reaper: Reaper) -> None:
    exits = _fork_exit(5, reaper)
    with reaper.spawning():
        pid = os.fork()
        if pid == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        killed = reaper.watch_pid(pid)
    assert reaper.wait_exit(exits, timeout_s=10).code == 5
    status = reaper.wait_exit(killed, timeout_s=10)
    assert status.describe() == "killed by SIGKILL (137)"
    assert reaper.status_of(killed) == status
    # A ref with the same pid but another start time never gets this status.
    assert reaper.status_of(ProcessRef(killed.pid, start_ticks=killed.start_ticks + 1)) is None


@pytest.mark.timeout(30)
def test_wait_exit_times_out_with_a_clear_error(reaper: Reaper) -> None:
    proc = subprocess.Popen(["sleep", "300"])
    ref = ProcessRef.of(proc.pid)
    reaper.watch(ref, popen=proc)
    with pytest.raises(ProcessError, match=r"timeout_s=0\.1"):
        reaper.wait_exit(ref, timeout_s=0.1)
    ref.send_signal(signal.SIGTERM)
    assert reaper.wait_exit(ref, timeout_s=10).code == 128 + signal.SIGTERM
    assert proc.returncode == -signal.SIGTERM  # Popen and reaper agree


@pytest.fixture
def subreaper() -> Iterator[None]:
    prctl.set_child_subreaper(True)
    try:
        yield
    finally:
        prctl.set_child_subreaper(False)


@pytest.mark.timeout(30)
def test_orphans_reparented_to_the_subreaper_are_reaped(
    reaper: Reaper, subreaper: None, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    # sh exits at once; its background child re-parents to us (the subreaper) and exits.
    subprocess.run(["sh", "-c", f"(sleep 0.2; exit 4) & echo $! > {pidfile}"], check=True)
    orphan = read_pid(pidfile)
    ref = ProcessRef.of(orphan)
    assert reaper.wait_exit(ref, timeout_s=10).code == 4
    assert zombies_on_machine_under(os.getpid()) == []


@pytest.mark.timeout(30)
def test_negative_control_without_reaping_orphans_stay_zombies(
    subreaper: None, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    subprocess.run(["sh", "-c", f"(sleep 0.2; exit 4) & echo $! > {pidfile}"], check=True)
    orphan = read_pid(pidfile)
    assert poll_for(lambda: orphan in zombies_on_machine_under(os.getpid()), timeout_s=10)
    os.waitpid(orphan, 0)  # clean up what the control left behind


def test_only_one_reaper_per_process(reaper: Reaper) -> None:
    with pytest.raises(ProcessError, match="already has a reaper"):
        Reaper().install()
