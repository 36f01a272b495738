"""audit: the /proc scan sees markers, and find_escaped reports what left the owner."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from corral.process import Containment, Reaper, find_escaped, kill_tree, scan
from corral.process.markers import OWNER, UNIT
from tests.helpers.procs import poll_for
from tests.process.helpers import DOUBLE_FORK_SETSID, kill_pid, ppid_of, read_setsid_pid


@pytest.mark.timeout(30)
def test_scan_finds_a_units_processes_with_their_details(containment: Containment) -> None:
    unit = containment.create_unit("u1", generation=4)
    ref = unit.spawn(["sleep", "300"])
    found = scan("u1", owner=containment.owner_id)
    assert [i.pid for i in found] == [ref.pid]
    info = found[0]
    assert info.cmdline == ("sleep", "300")
    assert info.generation == 4
    assert info.ppid == os.getpid()
    assert info.pgid == ref.pid
    assert info.rss_bytes > 0
    assert info.start_ticks == ref.start_ticks
    kill_tree(unit, grace_s=5)


@pytest.mark.timeout(30)
def test_contained_double_fork_is_not_escaped(containment: Containment, tmp_path: Path) -> None:
    unit = containment.create_unit("u1", generation=1)
    pidfile = tmp_path / "pid"
    unit.spawn(["sh", "-c", DOUBLE_FORK_SETSID.format(pidfile=pidfile)])
    grandchild = read_setsid_pid(pidfile)
    assert poll_for(lambda: ppid_of(grandchild) == os.getpid(), timeout_s=10)
    assert find_escaped(containment.owner_id) == []
    kill_tree(unit, grace_s=5)


@pytest.mark.timeout(30)
def test_negative_control_uncontained_double_fork_is_reported_escaped(
    reaper: Reaper, tmp_path: Path
) -> None:
    # Markers but no subreaper: the grandchild re-parents to init, as in seed 002.
    pidfile = tmp_path / "pid"
    env = dict(os.environ, **{OWNER: "loose-owner", UNIT: "u1"})
    cmd = DOUBLE_FORK_SETSID.format(pidfile=pidfile)
    proc = subprocess.Popen(["sh", "-c", cmd], env=env)
    grandchild = read_setsid_pid(pidfile)
    try:
        assert poll_for(lambda: ppid_of(grandchild) != os.getpid(), timeout_s=10)
        escaped = find_escaped("loose-owner")
        assert [i.pid for i in escaped] == [grandchild]
        assert "sleep 300" in escaped[0].describe()
    finally:
        kill_pid(grandchild)
        proc.kill()
        proc.wait()
