"""Both containment strategies: units hold whole trees, kill_tree empties them.

Each protection has a negative control showing the escape when it is off.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from corral.process import Containment, ProcessError, ProcessRef, Reaper, kill_tree, prctl
from corral.process.cgroup import CgroupContainment, CgroupUnit
from corral.process.markers import GENERATION, OWNER, UNIT
from tests.helpers.procs import environ_of, poll_for
from tests.process.helpers import (
    DOUBLE_FORK_SETSID,
    alive,
    kill_pid,
    ppid_of,
    read_setsid_pid,
)


@pytest.mark.timeout(30)
def test_spawn_marks_the_environment_and_own_process_group(containment: Containment) -> None:
    unit = containment.create_unit("u1", generation=3)
    ref = unit.spawn(["sleep", "300"])
    # /proc/PID/environ is empty for a moment while exec finishes setting up the stack.
    assert poll_for(lambda: environ_of(ref.pid) != b"", timeout_s=10)
    env = environ_of(ref.pid).split(b"\0")
    assert f"{UNIT}=u1".encode() in env
    assert f"{GENERATION}=3".encode() in env
    assert f"{OWNER}={containment.owner_id}".encode() in env
    assert os.getpgid(ref.pid) == ref.pid
    assert unit.pids() == [ref.pid]
    report = kill_tree(unit, grace_s=5)
    assert [p.pid for p in report.signalled] == [ref.pid]
    assert report.sigkilled == ()
    assert unit.is_empty()
    assert containment.reaper.wait_exit(ref, timeout_s=5).code == 128 + signal.SIGTERM


@pytest.mark.timeout(30)
def test_setsid_double_fork_grandchild_stays_in_the_unit(
    containment: Containment, tmp_path: Path
) -> None:
    unit = containment.create_unit("u1", generation=1)
    pidfile = tmp_path / "pid"
    ref = unit.spawn(["sh", "-c", DOUBLE_FORK_SETSID.format(pidfile=pidfile)])
    grandchild = read_setsid_pid(pidfile)
    assert os.getsid(grandchild) == grandchild  # it left the session and the group
    assert poll_for(lambda: ppid_of(grandchild) == os.getpid(), timeout_s=10)  # subreaper
    assert poll_for(lambda: sorted(unit.pids()) == sorted([ref.pid, grandchild]), timeout_s=10)
    kill_tree(unit, grace_s=5)
    assert not alive(grandchild)
    assert unit.is_empty()


@pytest.mark.timeout(30)
def test_negative_control_without_subreaper_grandchild_escapes_group_kill(
    reaper: Reaper, tmp_path: Path
) -> None:
    # No containment: the double-forked, setsid'd grandchild re-parents to init, and a
    # kill of the main process group misses it.
    assert not prctl.is_child_subreaper()
    pidfile = tmp_path / "pid"
    cmd = DOUBLE_FORK_SETSID.format(pidfile=pidfile)
    proc = subprocess.Popen(["sh", "-c", cmd], process_group=0)
    grandchild = read_setsid_pid(pidfile)
    try:
        assert poll_for(lambda: ppid_of(grandchild) not in (-1, os.getpid()), timeout_s=10)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert alive(grandchild), "the grandchild should have escaped the group kill"
    finally:
        kill_pid(grandchild)


@pytest.mark.timeout(30)
def test_kill_tree_stops_what_a_non_forwarding_shell_started(containment: Containment) -> None:
    # sh -c 'sleep 300; true' keeps sh in front (no exec) and does not forward SIGTERM.
    unit = containment.create_unit("u1", generation=1)
    ref = unit.spawn(["sh", "-c", "sleep 300; true"])
    assert poll_for(lambda: len(unit.pids()) == 2, timeout_s=10)
    sleep_pid = next(p for p in unit.pids() if p != ref.pid)
    report = kill_tree(unit, grace_s=5)
    assert sorted(p.pid for p in report.signalled) == sorted([ref.pid, sleep_pid])
    assert not alive(sleep_pid)
    assert unit.is_empty()


@pytest.mark.timeout(30)
def test_negative_control_sigterm_to_the_shell_leaves_sleep_running(reaper: Reaper) -> None:
    proc = subprocess.Popen(["sh", "-c", "sleep 300; true"])
    try:
        assert poll_for(lambda: _children_of(proc.pid) != [], timeout_s=10)
        sleep_pid = _children_of(proc.pid)[0]
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        assert alive(sleep_pid), "without kill_tree, sleep outlives its shell"
    finally:
        kill_pid(sleep_pid)


def _children_of(pid: int) -> list[int]:
    return [p for p in map(int, filter(str.isdigit, os.listdir("/proc"))) if ppid_of(p) == pid]


@pytest.mark.timeout(30)
def test_kill_tree_sigkills_what_ignores_the_stop_signal(containment: Containment) -> None:
    unit = containment.create_unit("u1", generation=1)
    ref = unit.spawn(["sh", "-c", "trap '' TERM; sleep 300 & trap '' TERM; wait"])
    assert poll_for(lambda: len(unit.pids()) == 2, timeout_s=10)
    report = kill_tree(unit, grace_s=0.3, kill_timeout_s=5)
    assert ref.pid in [p.pid for p in report.sigkilled]
    assert "SIGKILL needed" in report.describe()
    assert unit.is_empty()
    assert containment.reaper.wait_exit(ref, timeout_s=5).describe() == "killed by SIGKILL (137)"


@pytest.mark.timeout(30)
def test_stopped_processes_are_woken_and_stopped(containment: Containment) -> None:
    unit = containment.create_unit("u1", generation=1)
    ref = unit.spawn(["sleep", "300"])
    ref.send_signal(signal.SIGSTOP)
    report = kill_tree(unit, grace_s=5)
    assert report.sigkilled == ()  # SIGCONT let SIGTERM act within the grace period
    assert unit.is_empty()


@pytest.mark.timeout(30)
def test_adopt_takes_a_forked_child_into_the_unit(containment: Containment) -> None:
    unit = containment.create_unit("pool-1", generation=2)
    reader, writer = os.pipe()
    with containment.reaper.spawning():
        pid = os.fork()
        if pid == 0:  # a pool process: wait until adopted, then start a subprocess
            os.close(writer)
            os.read(reader, 1)
            os.environ.update(unit.markers())
            os.execvp("sh", ["sh", "-c", "sleep 300 & wait"])
        ref = unit.adopt(pid)
    os.close(reader)
    os.write(writer, b"x")
    os.close(writer)
    assert poll_for(lambda: len(unit.pids()) == 2, timeout_s=10)
    kill_tree(unit, grace_s=5)
    assert containment.reaper.wait_exit(ref, timeout_s=5).killed


@pytest.mark.timeout(30)
def test_unit_close_kills_leftovers_and_frees_the_id(containment: Containment) -> None:
    unit = containment.create_unit("u1", generation=1)
    ref = unit.spawn(["sleep", "300"])
    unit.close()
    assert not ref.alive()
    with pytest.raises(ProcessError, match="closed"):
        unit.spawn(["true"])
    containment.create_unit("u1", generation=2).close()


def test_unit_ids_are_validated(containment: Containment) -> None:
    with pytest.raises(ProcessError, match="not a valid id"):
        containment.create_unit("../escape", generation=1)
    with pytest.raises(ProcessError, match="reserved"):
        containment.create_unit("detached", generation=1)


def test_spawn_refuses_pipes(containment: Containment) -> None:
    unit = containment.create_unit("u1", generation=1)
    with pytest.raises(ProcessError, match="stdout=PIPE"):
        unit.spawn(["true"], stdout=subprocess.PIPE)


def test_describe_names_the_strategy(containment: Containment) -> None:
    line = containment.describe()
    if isinstance(containment, CgroupContainment):
        assert line.startswith("cgroup v2 at ") and "(cgroup.kill)" in line
    else:
        assert line == "subreaper + process groups + CORRAL_UNIT markers (fallback: forced)"


@pytest.mark.timeout(30)
def test_cgroup_freeze_fallback_when_cgroup_kill_is_not_used(
    cgroup_containment: CgroupContainment, tmp_path: Path
) -> None:
    containment = cgroup_containment
    containment.use_kill_file = False
    assert "(freeze + SIGKILL)" in containment.describe()
    unit = containment.create_unit("u1", generation=1)
    pidfile = tmp_path / "pid"
    unit.spawn(["sh", "-c", "trap '' TERM; " + DOUBLE_FORK_SETSID.format(pidfile=pidfile)])
    grandchild = read_setsid_pid(pidfile)
    report = kill_tree(unit, grace_s=0.2)
    assert report.sigkilled
    assert not alive(grandchild)
    assert isinstance(unit, CgroupUnit)
    assert (unit.cgroup / "cgroup.freeze").read_text().strip() == "0"


@pytest.mark.timeout(30)
def test_spawned_child_is_in_its_cgroup_before_exec(
    cgroup_containment: CgroupContainment, tmp_path: Path
) -> None:
    containment = cgroup_containment
    unit = containment.create_unit("u1", generation=1)
    out = tmp_path / "cgroup.txt"
    with out.open("wb") as f:
        # cat reads its cgroup as its very first act after exec: only a move done
        # before exec can show up there.
        ref = unit.spawn(["cat", "/proc/self/cgroup"], stdout=f)
    assert containment.reaper.wait_exit(ref, timeout_s=10).code == 0
    assert out.read_text().splitlines()[-1].endswith(f"/corral-{containment.owner_id}/u1")


@pytest.mark.timeout(30)
def test_cgroup_members_include_sub_cgroups_a_task_made(
    cgroup_containment: CgroupContainment, tmp_path: Path
) -> None:
    unit = cgroup_containment.create_unit("u1", generation=1)
    assert isinstance(unit, CgroupUnit)
    top = unit.spawn(["sleep", "30"])
    assert unit.pids() == [top.pid]  # the descriptors are open from here on
    nested = unit.cgroup / "nested"  # as a task running as root could make
    nested.mkdir()
    (unit.cgroup / "cgroup.subtree_control").write_text("")  # no controllers: stays legal
    inner = unit.spawn(["sleep", "30"])
    (nested / "cgroup.procs").write_text(str(inner.pid))
    assert sorted(unit.pids()) == sorted([top.pid, inner.pid])
    unit.close()
    assert not unit.cgroup.exists()


def test_refs_are_process_refs(containment: Containment) -> None:
    ref = containment.create_unit("u1", generation=1).spawn(["true"])
    assert isinstance(ref, ProcessRef)
    assert containment.reaper.wait_exit(ref, timeout_s=10).code == 0
