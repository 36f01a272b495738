"""Fixtures that run real `corral worker` processes against a temporary SQLite file."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers.worker_process import WorkerProcess

APP_SOURCE = Path(__file__).resolve().parents[1] / "apps" / "worker_app.py"
SRC = Path(__file__).resolve().parents[2] / "src"


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
            self.workdir, self.env, "wapp:app", ["--containment", self.containment, *args]
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
    previous = os.environ.get("CORRAL_BROKER_URL")  # before WorkerEnv sets it
    env = WorkerEnv(tmp_path, request.param)
    try:
        yield env
    finally:
        env.close()
        if previous is None:
            os.environ.pop("CORRAL_BROKER_URL", None)
        else:
            os.environ["CORRAL_BROKER_URL"] = previous
