"""reclaim_abandoned: units of a SIGKILLed owner are killed and their cgroups removed.

The owner is a real child process (a small script that makes a CgroupContainment and
spawns ``sleep`` in a unit); the test SIGKILLs it, as the OOM killer would. Negative
controls: a live owner and an owner cgroup without an owner record are left alone.
The test process is a child subreaper meanwhile, so the orphaned ``sleep`` re-parents to
it and the test reaps it (instead of depending on what PID 1 of the machine does).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from corral.process import ProcessError, find_abandoned, prctl, reclaim_abandoned
from corral.process.cgroup import OWNER_XATTR, find_writable_cgroup
from tests.helpers.cgroups import remove_cgroup
from tests.process.helpers import alive, kill_pid

OWNER_SCRIPT = """
import sys
from pathlib import Path
from corral.process import choose_containment

owner_id, records, detached = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "1"
containment = choose_containment(
    force="cgroup", owner_id=owner_id, records_dir=records, cgroup_base=Path(sys.argv[4])
)
unit = containment.create_unit("pool-1", generation=1)
pids = [unit.spawn(["sleep", "300"], stdout=-3, stderr=-3).pid]
if detached:
    pids.append(containment.detached_unit().spawn(["sleep", "301"], stdout=-3).pid)
print(" ".join(map(str, pids)), flush=True)
sys.stdin.read()  # until the test closes stdin (or SIGKILLs us)
containment.close(kill_detached=True)
"""


@dataclass
class Owner:
    """A running owner script, its cgroup and the pids it spawned."""

    owner_id: str
    directory: Path
    process: subprocess.Popen[str]
    pids: list[int]

    def sigkill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


def _reap(pid: int) -> None:
    """Wait for an orphan that re-parented to us (we are a subreaper) and reap it."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


@pytest.fixture
def base() -> Iterator[Path]:
    """A private base cgroup: a worker started by a parallel test reclaims dead owners
    under the machine's base, and must not take this test's owners from under it."""
    found = find_writable_cgroup()
    if found is None:
        pytest.skip("no writable cgroup v2 on this machine")
    private = found / f"reclaim-test-{uuid.uuid4().hex[:10]}"
    private.mkdir()
    try:
        yield private
    finally:
        remove_cgroup(private)


@pytest.fixture
def subreaper() -> Iterator[None]:
    was = prctl.is_child_subreaper()
    prctl.set_child_subreaper(True)
    try:
        yield
    finally:
        prctl.set_child_subreaper(was)


@pytest.fixture
def owners(base: Path, tmp_path: Path, subreaper: None) -> Iterator[list[Owner]]:
    """Owners started by the test; every one is killed, reaped and its cgroup removed."""
    started: list[Owner] = []
    yield started
    for owner in started:
        owner.process.kill()
        owner.process.wait(timeout=10)
        remove_cgroup(owner.directory)
        for pid in owner.pids:
            kill_pid(pid)
            _reap(pid)


def start_owner(
    owners: list[Owner], base: Path, tmp_path: Path, *, detached: bool = False
) -> Owner:
    owner_id = f"t{uuid.uuid4().hex[:10]}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            OWNER_SCRIPT,
            owner_id,
            str(tmp_path / owner_id),
            str(int(detached)),
            str(base),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    owner = Owner(owner_id, base / f"corral-{owner_id}", process, [])
    owners.append(owner)
    assert process.stdout is not None
    owner.pids = [int(p) for p in process.stdout.readline().split()]
    assert owner.pids, "the owner script printed no pids"
    return owner


@pytest.mark.timeout(60)
def test_units_of_a_sigkilled_owner_are_killed_and_removed(
    owners: list[Owner], base: Path, tmp_path: Path
) -> None:
    owner = start_owner(owners, base, tmp_path)
    [sleep] = owner.pids
    assert os.getxattr(owner.directory, OWNER_XATTR).split()[0] == str(owner.process.pid).encode()
    owner.sigkill()
    assert alive(sleep)  # nothing else would stop it: that is the bug reclaim fixes
    reports = [r for r in reclaim_abandoned(base=base) if r.owner_id == owner.owner_id]
    assert len(reports) == 1, reports
    [report] = reports
    assert report.owner_pid == owner.process.pid
    assert [p.pid for p in report.killed] == [sleep]
    assert report.killed[0].cmdline == ("sleep", "300")
    assert report.removed, report.describe()
    assert report.note == ""
    _reap(sleep)
    assert not alive(sleep)
    assert not owner.directory.exists()


@pytest.mark.timeout(60)
def test_an_owner_that_is_alive_is_left_alone(
    owners: list[Owner], base: Path, tmp_path: Path
) -> None:
    owner = start_owner(owners, base, tmp_path)
    [sleep] = owner.pids
    reports = reclaim_abandoned(base=base)
    assert owner.owner_id not in [r.owner_id for r in reports]
    assert owner.owner_id not in [a.owner_id for a in find_abandoned(base=base)]
    assert alive(sleep)
    assert (owner.directory / "pool-1").is_dir()
    # The owner stops cleanly: its own close() kills the unit and removes the cgroup.
    assert owner.process.stdin is not None
    owner.process.stdin.close()
    assert owner.process.wait(timeout=20) == 0
    _reap(sleep)
    assert not owner.directory.exists()


@pytest.mark.timeout(60)
def test_detached_processes_of_a_dead_owner_are_kept(
    owners: list[Owner], base: Path, tmp_path: Path
) -> None:
    owner = start_owner(owners, base, tmp_path, detached=True)
    pooled, detached = owner.pids
    owner.sigkill()
    [report] = [r for r in reclaim_abandoned(base=base) if r.owner_id == owner.owner_id]
    assert [p.pid for p in report.killed] == [pooled]
    assert [p.pid for p in report.kept] == [detached]
    assert not report.removed
    _reap(pooled)
    assert alive(detached)
    assert not (owner.directory / "pool-1").exists()
    # Once the detached process ends, the next reclaim removes the owner cgroup.
    kill_pid(detached)
    _reap(detached)
    [again] = [r for r in reclaim_abandoned(base=base) if r.owner_id == owner.owner_id]
    assert again.killed == () and again.kept == ()
    assert again.removed
    assert not owner.directory.exists()


@pytest.mark.timeout(60)
def test_an_owner_cgroup_without_a_record_is_reported_not_touched(
    base: Path, subreaper: None
) -> None:
    directory = base / f"corral-t{uuid.uuid4().hex[:10]}"
    unit = directory / "pool-1"
    unit.mkdir(parents=True)
    sleep = None
    try:
        sleep = subprocess.Popen(["sleep", "300"])
        (unit / "cgroup.procs").write_text(str(sleep.pid))
        [report] = [r for r in reclaim_abandoned(base=base) if r.directory == directory]
        assert report.owner_pid is None
        assert report.killed == () and not report.removed
        assert "no owner record" in report.note
        assert alive(sleep.pid)
        assert unit.is_dir()
    finally:
        remove_cgroup(directory)
        if sleep is not None:
            sleep.kill()
            sleep.wait(timeout=10)
    assert not directory.exists()


def test_a_base_that_is_not_cgroup_v2_is_refused(tmp_path: Path) -> None:
    (tmp_path / "corral-x").mkdir()
    with pytest.raises(ProcessError, match="not a cgroup v2 directory"):
        reclaim_abandoned(base=tmp_path)
    assert (tmp_path / "corral-x").is_dir()


@pytest.mark.timeout(60)
def test_an_owner_in_another_pid_namespace_is_left_alone(base: Path, subreaper: None) -> None:
    """Pid 1 of a container is not the host's pid 1: an owner recorded in another pid
    namespace cannot be judged from here, so it is never reclaimed. Negative control:
    the same record in this namespace, with a dead pid, is reclaimed."""
    from corral.process.cgroup import pid_namespace

    directory = base / f"corral-t{uuid.uuid4().hex[:10]}"
    unit = directory / "pool-1"
    unit.mkdir(parents=True)
    sleep = subprocess.Popen(["sleep", "300"])
    try:
        (unit / "cgroup.procs").write_text(str(sleep.pid))
        os.setxattr(directory, OWNER_XATTR, b"1 1 pid:[1]")  # pid 1 of some container
        assert directory not in [r.directory for r in reclaim_abandoned(base=base)]
        assert alive(sleep.pid)
        os.setxattr(directory, OWNER_XATTR, f"1 1 {pid_namespace()}".encode())
        [report] = [r for r in reclaim_abandoned(base=base) if r.directory == directory]
        assert [p.pid for p in report.killed] == [sleep.pid]
        sleep.wait(timeout=10)
    finally:
        remove_cgroup(directory)
        if sleep.poll() is None:
            sleep.kill()
            sleep.wait(timeout=10)
