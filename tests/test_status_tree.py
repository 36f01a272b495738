"""``corral status APP --tree``: worker trees from registry details, STALE pools, escapes.

Workers are fabricated ``WorkerInfo`` records registered in a temporary SQLite broker
(the shape the worker publishes in ``details``); the escaped case uses real ``sleep``
processes carrying CORRAL_* markers, found by the command's /proc scan.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral.brokers.base import WorkerInfo
from corral.brokers.sqlite import SqliteBroker
from corral.process import Reaper, choose_containment, markers, prctl
from corral.process.cgroup import find_writable_cgroup
from tests.helpers.procs import environ_of, poll_for

REPO = Path(__file__).resolve().parents[1]
APP = "tests.apps.worker_app:app"
HOST = socket.gethostname()

POOL_NEW = {
    "pid": 11,
    "unit": "pool-3",
    "generation": 2,
    "fingerprint": "1a2b3c4d5e6f",
    "state": "busy",
    "task_id": "ab12cd34",
    "task": "app.send_sms",
    "running_s": 1.25,
    "rss_bytes": 31_000_000,
    "done": 40,
    "descendants": [
        {"pid": 12, "ppid": 11, "cmdline": "sh -c sleep 5", "rss_bytes": 1000, "state": "S"}
    ],
}
POOL_OLD = {**POOL_NEW, "pid": 21, "unit": "pool-1", "generation": 1, "fingerprint": "0000old0000"}
POOL_OLD["descendants"] = []
DETACHED = {"pid": 13, "ppid": 1, "cmdline": "nohup backup.sh", "rss_bytes": 2000, "state": "S"}


def details(owner: str, *pools: dict[str, Any]) -> str:
    return json.dumps(
        {
            "generation": 2,
            "containment": "cgroup v2 at /sys/fs/cgroup/corral-x (cgroup.kill)",
            "owner": owner,
            "pools": list(pools),
            "detached": [DETACHED],
        }
    )


class Registry:
    """A temporary SQLite broker and the ``corral status`` command pointed at it."""

    def __init__(self, path: Path) -> None:
        self.url = f"sqlite:///{path}"
        self.broker = SqliteBroker(path)

    def register(self, worker_id: str, *, pid: int, details: str = "{}") -> None:
        self.broker.register_worker(
            WorkerInfo(
                id=worker_id,
                host=HOST,
                pid=pid,
                queues=("default",),
                concurrency=2,
                started_at=time.time(),
                details=details,
            )
        )

    def status(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "CORRAL_BROKER_URL": self.url,
            "PYTHONPATH": str(REPO),
            "COLUMNS": "250",  # one line per node, whatever the terminal
        }
        run = subprocess.run(
            [sys.executable, "-m", "corral.cli.main", "status", APP, "--tree", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, (run.stdout, run.stderr)
        return run

    def tree_json(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.status("--json").stdout)
        return result


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    made = Registry(tmp_path / "t.db")
    yield made
    made.broker.close()


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """``sleep`` processes the test starts with markers; all are killed and reaped."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait(timeout=10)


def start_marked(
    sleepers: list[subprocess.Popen[bytes]], *, owner: str, unit: str = "pool-1"
) -> int:
    env = {**os.environ, markers.OWNER: owner, markers.UNIT: unit, markers.GENERATION: "1"}
    proc = subprocess.Popen(["sleep", "300"], env=env)
    sleepers.append(proc)
    # /proc/PID/environ reads empty for a moment while exec sets up the new stack.
    assert poll_for(lambda: environ_of(proc.pid) != b"", timeout_s=10)
    return proc.pid


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait(timeout=10)
    return proc.pid


def unique(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{time.monotonic_ns() % 10**9}"


@pytest.mark.timeout(60)
def test_json_marks_the_pool_running_old_code_stale(registry: Registry) -> None:
    registry.register("w1", pid=os.getpid(), details=details(unique("w"), POOL_NEW, POOL_OLD))
    [worker] = registry.tree_json()["workers"]
    assert worker["containment"].startswith("cgroup v2 at")
    assert worker["generation"] == 2
    stale = {pool["pid"]: pool["stale"] for pool in worker["pools"]}
    assert stale == {11: False, 21: True}
    assert worker["pools"][0]["descendants"][0]["cmdline"] == "sh -c sleep 5"
    assert worker["detached"] == [DETACHED]


@pytest.mark.timeout(60)
def test_the_tree_shows_pools_descendants_detached_and_stale(registry: Registry) -> None:
    owner = unique("w")
    registry.register("w1", pid=os.getpid(), details=details(owner, POOL_NEW, POOL_OLD))
    lines = registry.status().stdout.splitlines()
    text = "\n".join(lines)
    assert f"worker w1  pid {os.getpid()} on {HOST}  owner {owner}" in text
    assert "cgroup v2 at /sys/fs/cgroup/corral-x (cgroup.kill)" in text
    pool_new = next(line for line in lines if "pool pid 11" in line)
    pool_old = next(line for line in lines if "pool pid 21" in line)
    assert "STALE" not in pool_new and "STALE" in pool_old
    for part in ("unit pool-3", "generation 2", "busy", "task ab12cd34 app.send_sms", "done 40"):
        assert part in pool_new, (part, pool_new)
    assert "29.6 MiB" in pool_new
    assert "MAIN NOT RUNNING" not in text
    # The descendant is drawn under its pool, the detached process under "detached".
    descendant = next(i for i, line in enumerate(lines) if "pid 12" in line)
    assert lines.index(pool_new) < descendant < lines.index(pool_old)
    assert lines.index(pool_old) < next(i for i, line in enumerate(lines) if "detached" in line)
    assert any("pid 13" in line and "nohup backup.sh" in line for line in lines)
    assert f"escaped on {HOST} (this machine only)" in text


@pytest.mark.timeout(60)
def test_old_entries_without_details_still_render(registry: Registry) -> None:
    registry.register("old", pid=os.getpid())
    registry.register("odd", pid=os.getpid(), details=json.dumps({"pools": [{"pid": 5}]}))
    workers = {w["id"]: w for w in registry.tree_json()["workers"]}
    assert workers["old"]["pools"] == [] and workers["old"]["detached"] == []
    assert workers["old"]["owner"] is None
    assert workers["odd"]["pools"] == [{"pid": 5, "descendants": [], "stale": False}]
    text = registry.status().stdout
    assert "worker old" in text and "containment unknown" in text
    assert "pool pid 5" in text


@pytest.mark.timeout(60)
def test_processes_of_a_dead_owner_are_listed_as_escaped(
    registry: Registry, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    live_owner, dead_owner, gone_owner = unique("live"), unique("dead"), unique("gone")
    registry.register("live", pid=os.getpid(), details=details(live_owner))
    registry.register("gone", pid=dead_pid(), details=details(gone_owner))
    escaped_dead = start_marked(sleepers, owner=dead_owner, unit="pool-7")
    escaped_gone = start_marked(sleepers, owner=gone_owner)
    # Negative controls: held by a live registered worker, or handed over with detach().
    held = start_marked(sleepers, owner=live_owner)
    detached = start_marked(sleepers, owner=dead_owner, unit=markers.DETACHED_UNIT)
    tree = registry.tree_json()
    assert {w["id"]: w["main_alive"] for w in tree["workers"]} == {"live": True, "gone": False}
    escaped = {p["pid"]: p for p in tree["escaped"]}
    assert escaped_dead in escaped and escaped_gone in escaped
    assert held not in escaped and detached not in escaped
    assert escaped[escaped_dead]["owner"] == dead_owner
    assert escaped[escaped_dead]["unit"] == "pool-7"
    assert escaped[escaped_dead]["cmdline"] == "sleep 300"
    lines = registry.status().stdout.splitlines()
    line = next(line for line in lines if f"pid {escaped_dead}" in line)
    assert "MAIN NOT RUNNING" in next(line for line in lines if "worker gone" in line)
    assert f"owner {dead_owner}" in line and "unit pool-7" in line and "sleep 300" in line
    for proc in sleepers:
        proc.kill()
        proc.wait(timeout=10)
    remaining = {p["pid"] for p in registry.tree_json()["escaped"]}
    assert escaped_dead not in remaining and escaped_gone not in remaining


@pytest.mark.timeout(60)
def test_a_process_in_the_cgroup_of_a_live_owner_is_not_escaped(
    registry: Registry, tmp_path: Path
) -> None:
    # An owner of another app (or a supervisor) is in no registry we read, but its
    # cgroup records it and a cgroup cannot be left: its processes are contained.
    if find_writable_cgroup() is None:
        pytest.skip("no writable cgroup v2 on this machine")
    with Reaper().installed() as reaper:
        containment = choose_containment(
            force="cgroup", owner_id=unique("other"), reaper=reaper, records_dir=tmp_path / "r"
        )
        try:
            ref = containment.create_unit("pool-1", generation=1).spawn(["sleep", "300"])
            assert poll_for(lambda: environ_of(ref.pid) != b"", timeout_s=10)
            escaped = {p["pid"] for p in registry.tree_json()["escaped"]}
            assert ref.pid not in escaped
        finally:
            containment.close(kill_detached=True)
            prctl.set_child_subreaper(False)
            reaper.reap_nowait()
