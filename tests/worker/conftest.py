"""Fixtures that run real `corral worker` processes against a temporary SQLite file."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers.procs import children_of, poll_for

APP_SOURCE = Path(__file__).resolve().parents[1] / "apps" / "worker_app.py"
SRC = Path(__file__).resolve().parents[2] / "src"


class WorkerProcess:
    """One `corral worker wapp:app` process and its log."""

    def __init__(self, workdir: Path, env: dict[str, str], args: list[str]) -> None:
        self.log_path = workdir / f"worker-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in wait()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "corral.cli.main", "worker", "wapp:app", *args],
            cwd=workdir,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.pid = self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout_s: float = 30.0) -> int:
        code = self.process.wait(timeout=timeout_s)
        self._log.close()
        return code

    def pool_pids(self) -> list[int]:
        """Pool processes: children of the worker main."""
        return children_of(self.pid)

    def wait_pools(self, count: int, timeout_s: float = 20.0) -> list[int]:
        """The pool processes, once there are ``count`` (the list that was seen, not a
        second scan that a pool process starting or leaving could change)."""
        seen: list[int] = []

        def enough() -> bool:
            seen[:] = self.pool_pids()
            return len(seen) >= count

        assert poll_for(enough, timeout_s=timeout_s), self.log()
        return seen

    def stop(self) -> int:
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
        try:
            return self.wait(30.0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.wait(10.0)


class WorkerEnv:
    """A temporary directory with the test app, its broker, and workers to start."""

    def __init__(self, workdir: Path, containment: str = "auto") -> None:
        self.workdir = workdir
        self.containment = containment
        self.db_url = f"sqlite:///{workdir}/broker.db"
        shutil.copy(APP_SOURCE, workdir / "wapp.py")
        self.env = dict(os.environ)
        self.env["CORRAL_BROKER_URL"] = self.db_url
        self.env["PYTHONPATH"] = os.pathsep.join([str(workdir), str(SRC)])
        self.workers: list[WorkerProcess] = []
        os.environ["CORRAL_BROKER_URL"] = self.db_url
        self.module = self._import()

    def _import(self) -> ModuleType:
        spec = importlib.util.spec_from_file_location("wapp", self.workdir / "wapp.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["wapp"] = module
        spec.loader.exec_module(module)
        return module

    def start(self, *args: str) -> WorkerProcess:
        worker = WorkerProcess(
            self.workdir, self.env, ["--containment", self.containment, *args]
        )
        self.workers.append(worker)
        return worker

    def path(self, name: str) -> str:
        return str(self.workdir / name)

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.module.app.close()
        sys.modules.pop("wapp", None)


@pytest.fixture(params=["cgroup", "subreaper"])
def wenv(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[WorkerEnv]:
    """A worker environment, once per containment strategy."""
    env = WorkerEnv(tmp_path, request.param)
    previous = os.environ.get("CORRAL_BROKER_URL")
    try:
        yield env
    finally:
        env.close()
        if previous is None:
            os.environ.pop("CORRAL_BROKER_URL", None)
        else:
            os.environ["CORRAL_BROKER_URL"] = previous
