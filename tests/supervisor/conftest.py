"""Fixtures that run a real `corral run` on a corral.toml in a temporary directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.procs import poll_for

SRC = Path(__file__).resolve().parents[2] / "src"


class RunEnv:
    """A directory with a corral.toml, the `corral run` started on it, and `corral ctl`."""

    def __init__(self, workdir: Path, containment: str) -> None:
        self.workdir = workdir
        self.containment = containment
        self.config = workdir / "corral.toml"
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(workdir), str(SRC)]))
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "run.log"
        self.cgroup: Path | None = None  # start `corral run` in this cgroup v2 directory

    def write(self, toml: str) -> None:
        header = f'[corral]\ncontainment = "{self.containment}"\n\n'
        self.config.write_text(header + textwrap.dedent(toml))

    def start(self, *, wait_running: bool = True, command: list[str] | None = None) -> None:
        default = [sys.executable, "-m", "corral.cli.main", "run", "-c", str(self.config)]
        command = command or default
        if self.cgroup is not None:  # joined before exec, so its units are made there
            procs = self.cgroup / "cgroup.procs"
            command = ["sh", "-c", f'echo $$ > "{procs}" && exec "$@"', "sh", *command]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        assert poll_for(self.answering, timeout_s=20), self.log()
        if wait_running:
            assert poll_for(self.all_settled, timeout_s=30), self.status()

    def answering(self) -> bool:
        return (self.workdir / ".corral" / "control.sock").exists() and self.ctl_ok("status")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def ctl(self, *args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "corral.cli.main", "ctl", "-c", str(self.config), *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def ctl_ok(self, *args: str) -> bool:
        return self.ctl(*args).returncode == 0

    def status(self) -> dict[str, Any]:
        done = self.ctl("status", "--json")
        assert done.returncode == 0, done.stderr
        answer: dict[str, Any] = json.loads(done.stdout)
        return answer

    def instance(self, name: str) -> dict[str, Any]:
        return next(i for i in self.status()["instances"] if i["name"] == name)

    def all_settled(self) -> bool:
        states = {i["state"] for i in self.status()["instances"]}
        return not states & {"starting", "backoff", "stopping"}

    def stop(self, timeout_s: float = 60.0) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)


@pytest.fixture(params=["cgroup", "subreaper"])
def run_env(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[RunEnv]:
    """A `corral run` environment, once per containment strategy."""
    env = RunEnv(tmp_path, request.param)
    try:
        yield env
    finally:
        env.stop()


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rindex(b")") + 2 :].split()[0] != b"Z"


def wait_for(check: Any, timeout_s: float = 20.0) -> bool:
    return poll_for(check, timeout_s=timeout_s)


def now() -> float:
    return time.monotonic()
