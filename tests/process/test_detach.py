"""detach(): seed 001's nohup helper survives the task's kill_tree, stays visible, is reaped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from corral.process import Containment, ProcessError, ProcessRef, detach, kill_tree, scan
from corral.process.markers import DETACHED_UNIT
from tests.helpers.procs import poll_for, zombies_on_machine_under
from tests.process.helpers import alive, ppid_of, read_pid

# A task that starts a helper with nohup, detaching it first (or not), then keeps running.
TASK = """
import os, sys, time
from corral.process import detach
pid = os.fork()
if pid == 0:
    if sys.argv[2] == "detach":
        detach()
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    os.execvp("nohup", ["nohup", "sleep", "300"])
time.sleep(300)
"""


def _start_task(containment: Containment, tmp_path: Path, mode: str) -> tuple[ProcessRef, int]:
    unit = containment.create_unit("task-1", generation=1)
    pidfile = tmp_path / "helper.pid"
    ref = unit.spawn(
        [sys.executable, "-c", TASK, str(pidfile), mode],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    helper = read_pid(pidfile)
    assert poll_for(lambda: helper in unit.pids() or mode == "detach", timeout_s=10)
    return ref, helper


@pytest.mark.timeout(60)
def test_detached_nohup_helper_survives_kill_tree_and_is_still_reaped(
    containment: Containment, tmp_path: Path
) -> None:
    ref, helper = _start_task(containment, tmp_path, "detach")
    unit = containment.units()[0]
    cmdline = Path(f"/proc/{helper}/cmdline")
    assert poll_for(lambda: b"nohup" not in cmdline.read_bytes(), timeout_s=10)
    assert helper not in unit.pids()

    kill_tree(unit, grace_s=5)
    assert not ref.alive()
    assert alive(helper)
    assert poll_for(lambda: ppid_of(helper) == os.getpid(), timeout_s=10)  # still ours

    detached = containment.detached_unit()
    assert detached.pids() == [helper]
    marked = [i for i in scan(owner=containment.owner_id) if i.pid == helper]
    assert marked and marked[0].unit == DETACHED_UNIT

    helper_ref = ProcessRef.of(helper)
    kill_tree(detached, grace_s=5)
    assert containment.reaper.wait_exit(helper_ref, timeout_s=10).killed
    assert zombies_on_machine_under(os.getpid()) == []


@pytest.mark.timeout(60)
def test_negative_control_without_detach_nohup_does_not_save_the_helper(
    containment: Containment, tmp_path: Path
) -> None:
    _ref, helper = _start_task(containment, tmp_path, "stay")
    kill_tree(containment.units()[0], grace_s=5)
    assert not alive(helper), "nohup alone is no protection from the unit's kill"


def test_detach_outside_a_unit_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CORRAL_CONTAINMENT", raising=False)
    with pytest.raises(ProcessError, match="CORRAL_CONTAINMENT is not set"):
        detach()
