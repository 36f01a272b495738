"""A network partition between a worker and Redis, made real with a network namespace.

The partitioned worker runs in its own namespace, joined to the host by a veth pair
with addresses from 198.51.100.0/24 (TEST-NET-2); Redis listens on the host side,
with a password (protected mode refuses non-loopback clients without one). Cutting
the link while that worker runs a task longer than ``lease_s`` lets a worker on the
host take the task over; when the link comes back, the late outcome is refused.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers.procs import poll_for
from tests.helpers.redis_server import RedisServer
from tests.redis_worker.conftest import RedisWorkerEnv, runs_in

LEASE_S = 2.0  # rapp.tagged_run's


@dataclass
class Link:
    """A namespace and the veth pair joining it to the host, on a /30 of TEST-NET-2."""

    namespace: str = field(default_factory=lambda: f"corral-{uuid.uuid4().hex[:8]}")
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    base: int = field(default_factory=lambda: 4 * random.randrange(64))

    @property
    def host_if(self) -> str:
        return f"crh{self.suffix}"

    @property
    def inner_if(self) -> str:
        return f"crp{self.suffix}"

    @property
    def host_ip(self) -> str:
        return f"198.51.100.{self.base + 1}"

    @property
    def inner_ip(self) -> str:
        return f"198.51.100.{self.base + 2}"

    def exec_prefix(self) -> list[str]:
        """Run a command inside the namespace (``ip netns exec`` execs it: same pid)."""
        return ["ip", "netns", "exec", self.namespace]

    def create(self) -> None:
        _ip("netns", "add", self.namespace)
        _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.inner_if)
        _ip("link", "set", self.inner_if, "netns", self.namespace)
        _ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        _ip("link", "set", self.host_if, "up")
        self._inside("addr", "add", f"{self.inner_ip}/30", "dev", self.inner_if)
        self.set_up(True)

    def set_up(self, up: bool) -> None:
        """Bring the namespace's end up or down (the host keeps its address either way)."""
        self._inside("link", "set", self.inner_if, "up" if up else "down")

    def remove(self) -> None:
        """Delete the namespace (its veth end, and so the pair, goes with it)."""
        subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, check=False)

    def _inside(self, *args: str) -> None:
        _ip("-n", self.namespace, *args)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@contextmanager
def namespace_link() -> Iterator[Link]:
    """A fresh link, removed afterwards; skips the test if namespaces are not permitted."""
    if shutil.which("ip") is None:
        pytest.skip("the ip command (iproute2) is not installed")
    link = Link()
    try:
        link.create()
    except subprocess.CalledProcessError as error:
        link.remove()
        reason = error.stderr.decode(errors="replace").strip()
        pytest.skip(f"cannot create a network namespace and veth pair here: {reason}")
    try:
        yield link
    finally:
        link.remove()


@dataclass
class HostRedisServer(RedisServer):
    """A redis-server listening on ``host`` (the host end of the veth) instead of loopback."""

    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@{self.host}:{self.port}/0"

    def command_line(self) -> list[str]:
        args = super().command_line()
        args[args.index("--bind") + 1] = self.host
        return args


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_partitioned_workers_late_outcome_does_not_overwrite(tmp_path: Path) -> None:
    with namespace_link() as link:
        server = HostRedisServer(host=link.host_ip, password=uuid.uuid4().hex)
        server.start()
        renv = RedisWorkerEnv(tmp_path, server)
        try:
            check_partition(renv, link)
        finally:
            renv.close()  # every worker, the one in the namespace too, before it goes
            server.stop()


def check_partition(renv: RedisWorkerEnv, link: Link) -> None:
    far = renv.start(tag="slow", prefix=link.exec_prefix())
    renv.wait_registered(1)
    folder = renv.folder("task")
    handle = renv.app.send("rapp.tagged_run", str(folder), LEASE_S * 4)
    assert poll_for(lambda: runs_in(folder) == ["slow"], timeout_s=20), far.log()
    link.set_up(False)  # the partition: the far worker can neither renew nor settle
    renv.start(tag="fast")
    assert handle.get(timeout_s=40) == "fast"
    stored = renv.app.broker.get_result(handle.id)
    assert poll_for((folder / "finished-slow").exists, timeout_s=40), far.log()
    link.set_up(True)
    assert far.wait_log(f"outcome of task {handle.id} dropped", timeout_s=60), far.log()
    assert renv.app.broker.get_result(handle.id) == stored
    assert runs_in(folder) == ["slow", "fast"]
    assert far.process.poll() is None, far.log()
    assert str(renv.server.password) not in far.log(), "the worker logged the password"
    assert far.stop() == 0, far.log()
