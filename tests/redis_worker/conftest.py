"""Fixtures for worker-level Redis tests: a private redis-server per test, real workers.

Each test gets its own ``redis-server`` on a free port (tests/helpers/redis_server.py:
never 127.0.0.1:6379), real ``corral worker tests.apps.redis_app:app`` processes
whose output goes to a log file, and a client app with the same tasks
(:func:`tests.apps.redis_app.make_app`). Everything is stopped at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from corral import Corral
from tests.apps.redis_app import make_app
from tests.helpers.procs import poll_for
from tests.helpers.redis_server import RedisServer, redis_server_binary
from tests.helpers.worker_process import WorkerProcess

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
APP_REF = "tests.apps.redis_app:app"

if redis_server_binary() is None:
    pytest.skip("redis-server is not installed", allow_module_level=True)


def child_env(url: str, **extra: str) -> dict[str, str]:
    """The environment of a process a test starts: the broker URL, the repo on the path."""
    env = dict(os.environ)
    env["CORRAL_BROKER_URL"] = url
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(SRC)])
    env.update(extra)
    return env


class RedisWorker(WorkerProcess):
    """A worker of the test app on the test's redis-server."""

    def __init__(
        self, workdir: Path, env: dict[str, str], args: Sequence[str], prefix: Sequence[str]
    ) -> None:
        super().__init__(workdir, env, APP_REF, args, prefix)


class RedisWorkerEnv:
    """A private redis-server, the workers started against it, and a client app."""

    def __init__(self, workdir: Path, server: RedisServer) -> None:
        self.workdir = workdir
        self.server = server
        self.workers: list[RedisWorker] = []
        self._clients: list[Corral] = []
        self.app = self.client()

    @property
    def url(self) -> str:
        """The broker URL workers and clients use."""
        return self.server.url

    def client(self, *, url: str | None = None, codec: str = "json") -> Corral:
        """A client app with the test tasks (closed with the env)."""
        app = make_app(url or self.url, codec=codec)
        self._clients.append(app)
        return app

    def start(
        self, *args: str, tag: str = "", prefix: Sequence[str] = (), url: str | None = None
    ) -> RedisWorker:
        """Start a worker (``-c 1`` unless ``args`` say otherwise), tagged ``tag``."""
        env = child_env(url or self.url, WORKER_TAG=tag)
        if "-c" not in args:
            args = ("-c", "1", *args)
        worker = RedisWorker(self.workdir, env, args, prefix)
        self.workers.append(worker)
        return worker

    def wait_registered(self, count: int, *, timeout_s: float = 20.0) -> None:
        """Wait until ``count`` workers are in the broker's registry."""
        broker = self.app.broker
        assert poll_for(lambda: len(broker.workers()) >= count, timeout_s=timeout_s), [
            w.log() for w in self.workers
        ]

    def folder(self, name: str) -> Path:
        """A fresh directory for one task's records."""
        path = self.workdir / name
        path.mkdir()
        return path

    def close(self) -> None:
        """Stop every worker, close every client."""
        for worker in self.workers:
            worker.stop()
        for app in self._clients:
            app.close()


def runs_in(folder: Path) -> list[str]:
    """The tags recorded by ``tagged_run`` in ``folder``, one per run."""
    path = folder / "runs"
    return path.read_text().split() if path.exists() else []


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server for this test (append-only, fsync always)."""
    server = RedisServer(persistent=True, data_dir=tmp_path / "redis")
    server.data_dir.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def renv(tmp_path: Path, redis_server: RedisServer) -> Iterator[RedisWorkerEnv]:
    """Workers and a client against this test's redis-server."""
    env = RedisWorkerEnv(tmp_path, redis_server)
    try:
        yield env
    finally:
        env.close()
