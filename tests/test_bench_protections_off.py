"""The "protections off" run of ``make bench`` (issue 7) really runs without protections.

bench/peers/corral_unprotected.py patches corral's protections out of a worker, for the
benchmark only. These tests keep that run honest: every name it patches still exists and
is still used where it expects (a refactor that renames one must update the bench), a
worker started through it has pool processes without containment or fork guard while a
normal worker (the control) has them, and the cost is reported as ``(off - on) / off``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PEERS = REPO / "bench" / "peers"
LAUNCHER = PEERS / "corral_unprotected.py"
PROBE_APP = '''
import os

from corral import Corral

app = Corral(os.environ["CORRAL_BROKER_URL"])


@app.task
def probe() -> dict:
    """What protects the pool process that runs this task."""
    from corral.worker import execution

    with open("/proc/self/cgroup") as f:
        cgroup = f.read()
    return {
        "unit": os.environ.get("CORRAL_UNIT"),
        "own_group": os.getpgid(0) == os.getpid(),
        "cgroup": cgroup,
        "fork_guard": type(execution.FORK_GUARD).__name__,
    }
'''


def load_launcher(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("corral_unprotected", LAUNCHER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "corral_unprotected", module)  # for its dataclass
    spec.loader.exec_module(module)
    return module


def test_every_patch_target_exists_and_is_used() -> None:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    argv = [sys.executable, str(LAUNCHER), "--check"]
    run = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_patch_whose_target_is_gone_or_unused_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    launcher = load_launcher(monkeypatch)

    class Owner:
        def user(self) -> Any:
            return self.renamed_protection()

        def renamed_protection(self) -> None:
            """Stands for a protection the code calls under a new name."""

    gone = launcher.Patch(Owner, "protection", None, Owner.user)
    unused = launcher.Patch(Owner, "__init__", None, Owner.user)
    assert gone.problem() == f"{__name__}.{Owner.__qualname__}.protection is gone"
    assert unused.problem().endswith("__init__ is no longer used by " + Owner.user.__qualname__)
    assert launcher.Patch(Owner, "renamed_protection", None, Owner.user).problem() is None


@pytest.fixture
def probe_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    (tmp_path / "probe_app.py").write_text(PROBE_APP)
    url = f"sqlite:///{tmp_path}/broker.db"
    env = dict(os.environ, CORRAL_BROKER_URL=url)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(SRC)])
    previous = os.environ.get("CORRAL_BROKER_URL")
    os.environ["CORRAL_BROKER_URL"] = url
    sys.path.insert(0, str(tmp_path))
    try:
        yield env
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("probe_app", None)
        if previous is None:
            os.environ.pop("CORRAL_BROKER_URL", None)
        else:
            os.environ["CORRAL_BROKER_URL"] = previous


def probe_worker(env: dict[str, str], tmp_path: Path, launcher: list[str]) -> dict[str, Any]:
    """Start a worker through ``launcher``, run the probe task once, stop the worker."""
    argv = [*launcher, "worker", "probe_app:app", "-c", "1", "--log-level", "WARNING"]
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        probe_app = importlib.import_module("probe_app")
        result: dict[str, Any] = probe_app.probe.delay().get(timeout_s=30)
        with open(f"/proc/{worker.pid}/cgroup") as f:
            result["main_cgroup"] = f.read()
        probe_app.app.close()
        return result
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=40)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)
        log.close()


@pytest.mark.slow
def test_the_off_worker_runs_tasks_unprotected(probe_env: dict[str, str], tmp_path: Path) -> None:
    off = probe_worker(probe_env, tmp_path, [sys.executable, str(LAUNCHER)])
    assert off["unit"] is None, off
    assert not off["own_group"], off
    assert off["cgroup"] == off["main_cgroup"], off
    assert off["fork_guard"] == "NoForkGuard", off


@pytest.mark.slow
def test_control_a_normal_worker_runs_tasks_protected(
    probe_env: dict[str, str], tmp_path: Path
) -> None:
    on = probe_worker(probe_env, tmp_path, [sys.executable, "-m", "corral.cli.main"])
    assert on["unit"] is not None, on
    assert on["own_group"], on
    assert on["fork_guard"] == "ForkGuard", on


def test_the_cost_is_off_minus_on_over_off_and_judged_on_cgroup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(PEERS))
    for name in ("report", "targets"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    report = importlib.import_module("report")
    targets = importlib.import_module("targets")
    try:
        assert report.protection_cost(9_000.0, 10_000.0) == pytest.approx(0.1)
        assert report.protection_cost(None, 10_000.0) is None

        def summary(cgroup: float) -> dict[str, dict[tuple[str, str], list[float]]]:
            rates = {"corral-off": 10_000.0, "corral": cgroup, "corral-subreaper": 5_000.0}
            return {key: {("processing", "per_s"): [rate]} for key, rate in rates.items()}

        _, measured, met = targets.protections(summary(9_500.0))
        assert met is True
        assert "cost 5.0%" in measured and "subreaper 5,000/s: cost 50.0%" in measured
        assert targets.protections(summary(8_900.0))[2] is False
        assert "| cgroup | 9,500 | 5.0% |" in report.protections(summary(9_500.0))
    finally:
        sys.modules.pop("report", None)
        sys.modules.pop("targets", None)
