"""``corral doctor``: each check explains what it found; the exit code names what failed.

The command runs as a user runs it (``python -m corral.cli.main doctor``) against a
real SQLite file and an unreachable Redis port; the checks' own functions run in-process
where the test must see that doctor changed nothing (subreaper flag, cgroups).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from corral import Corral, ExitCode
from corral.brokers.sqlite import SqliteBroker
from corral.cli.doctor import (
    Check,
    check_clock,
    check_containment,
    check_pidfd,
    check_subreaper,
    exit_code,
)
from corral.process import prctl
from corral.process.cgroup import find_writable_cgroup

REPO = Path(__file__).resolve().parents[1]

APP = "tests.apps.worker_app:app"
LOCAL_CHECKS = ["containment", "abandoned units", "subreaper", "pidfd", "PID 1"]


def doctor(*args: str, url: str = "sqlite:///unused.db") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CORRAL_BROKER_URL": url, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "corral.cli.main", "doctor", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def checks_of(run: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    report = json.loads(run.stdout)
    return {c["name"]: c for c in report["checks"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def corral_cgroups() -> set[str]:
    base = find_writable_cgroup()
    return set() if base is None else {p.name for p in base.glob("corral-doctor-*")}


@pytest.mark.timeout(60)
def test_without_app_only_local_checks_run_and_exit_zero() -> None:
    run = doctor("--json")
    assert run.returncode == ExitCode.OK, (run.stdout, run.stderr)
    checks = checks_of(run)
    assert list(checks) == LOCAL_CHECKS
    assert json.loads(run.stdout)["ok"] is True
    for check in checks.values():
        assert check["status"] in ("ok", "warn")
        assert check["found"]
        assert check["status"] == "ok" or check["fix"], check


@pytest.mark.timeout(60)
def test_the_table_names_every_check() -> None:
    run = doctor()
    assert run.returncode == ExitCode.OK, run.stderr
    for name in LOCAL_CHECKS:
        assert name in run.stdout


@pytest.mark.timeout(60)
def test_with_a_sqlite_app_the_broker_and_clock_are_ok(tmp_path: Path) -> None:
    run = doctor(APP, "--json", url=f"sqlite:///{tmp_path}/t.db")
    assert run.returncode == ExitCode.OK, (run.stdout, run.stderr)
    checks = checks_of(run)
    assert checks["broker"]["status"] == "ok"
    assert "answered in" in checks["broker"]["found"]
    assert checks["clock"]["status"] == "ok"


@pytest.mark.timeout(60)
def test_an_unreachable_broker_fails_with_its_exit_code_and_a_fix() -> None:
    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0?connect_timeout_s=0.5"
    run = doctor(APP, "--json", url=url)
    assert run.returncode == ExitCode.BROKER_UNAVAILABLE, (run.stdout, run.stderr)
    checks = checks_of(run)
    assert checks["broker"]["status"] == "fail"
    assert "redis-server" in checks["broker"]["fix"]
    assert "CORRAL_BROKER_URL" in checks["broker"]["fix"]
    assert "clock" not in checks  # nothing to compare with
    assert "s3cret" not in run.stdout  # the password is never printed
    assert json.loads(run.stdout)["ok"] is False


@pytest.mark.timeout(60)
def test_a_bad_app_is_a_config_error() -> None:
    run = doctor("no_such_module:app")
    assert run.returncode == ExitCode.CONFIG
    assert "no_such_module" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.timeout(30)
def test_containment_probe_leaves_no_cgroup_behind() -> None:
    before = corral_cgroups()
    check = check_containment()
    base = find_writable_cgroup()
    if base is None:
        assert check.status == "warn" and "subreaper" in check.found
    else:
        assert check.status == "ok"
        assert str(base) in check.found
        assert "cgroup.kill" in check.found or "freeze" in check.found
    assert corral_cgroups() == before


@pytest.mark.timeout(30)
def test_subreaper_is_tried_in_a_child_not_in_doctor_itself() -> None:
    was = prctl.is_child_subreaper()
    prctl.set_child_subreaper(False)
    try:
        check = check_subreaper()
        assert check.status == "ok", check
        assert not prctl.is_child_subreaper()
    finally:
        prctl.set_child_subreaper(was)


def test_pidfd_check_matches_the_kernel() -> None:
    check = check_pidfd()
    assert check.status == ("ok" if hasattr(os, "pidfd_open") else "warn")


@pytest.mark.parametrize(("skew_s", "status"), [(0.0, "ok"), (5.0, "warn"), (-5.0, "warn")])
def test_clock_skew_over_one_second_is_a_warning(
    tmp_path: Path, skew_s: float, status: str
) -> None:
    broker = SqliteBroker(tmp_path / "t.db", clock=lambda: time.time() + skew_s)
    app = Corral(broker=broker)
    try:
        check = check_clock(app)
    finally:
        app.close()
    assert check.status == status, check
    if status == "warn":
        assert "eta" in check.found and check.fix


def test_exit_code_names_what_failed() -> None:
    ok = Check("pidfd", "ok", "fine")
    warn = Check("PID 1", "warn", "maybe", "fix it")
    assert exit_code([ok, warn]) == ExitCode.OK
    assert exit_code([ok, Check("subreaper", "fail", "no", "fix")]) == ExitCode.FAILURE
    broker_down = Check("broker", "fail", "down", "start it")
    assert exit_code([Check("subreaper", "fail", "no"), broker_down]) == (
        ExitCode.BROKER_UNAVAILABLE
    )
