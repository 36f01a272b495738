"""Generations and rolling reloads: no stale code, no failed request (seed 002)."""

from __future__ import annotations

import http.client
import socket
import sys
import threading
from pathlib import Path

import pytest

from tests.supervisor.conftest import RunEnv, pid_alive, wait_for

pytestmark = pytest.mark.timeout(180)

WEB_APP = Path(__file__).with_name("web_app.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(port: int, version: str) -> str:
    return f"""
        [socket.web]
        address = "127.0.0.1:{port}"

        [program.web]
        command = ["{sys.executable}", "{WEB_APP}"]
        socket = "web"
        ready = "notify"
        numprocs = 2
        stop_grace_s = 5
        environment = {{ VERSION = "{version}" }}

        [program.sleeper]
        command = ["sleep", "300"]
        """


class Client(threading.Thread):
    """GETs as fast as it can until stopped; counts failures and versions seen."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stopped = threading.Event()
        self.failures: list[str] = []
        self.versions: list[str] = []

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                connection.request("GET", "/")
                response = connection.getresponse()
                body = response.read().decode()
                connection.close()
                if response.status != 200:
                    self.failures.append(f"HTTP {response.status}")
                self.versions.append(body.split()[0])
            except OSError as error:
                self.failures.append(repr(error))


def test_rolling_reload_no_failed_request_and_no_old_generation(run_env: RunEnv) -> None:
    port = _free_port()
    run_env.write(_config(port, "1"))
    run_env.start()
    before = run_env.instance("web:0")
    sleeper_before = run_env.instance("sleeper")["pid"]
    client = Client(port)
    client.start()
    assert wait_for(lambda: len(client.versions) > 20)
    run_env.write(_config(port, "2"))
    done = run_env.ctl("reload")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reloaded: web" in done.stdout
    # The reload has returned: no process of the old generation is left.
    status = run_env.status()
    web = [i for i in status["instances"] if i["program"] == "web"]
    assert all(i["generation"] == 2 and not i["stale"] for i in web)
    assert all(p["generation"] == 2 for i in web for p in i["processes"])
    assert not pid_alive(before["pid"])
    seen_at_return = len(client.versions)
    assert wait_for(lambda: len(client.versions) > seen_at_return + 20)
    client.stopped.set()
    client.join(timeout=15)
    assert client.failures == []
    assert set(client.versions[seen_at_return:]) == {"2"}
    assert "1" in client.versions
    # an unchanged program keeps running, untouched
    assert run_env.instance("sleeper")["pid"] == sleeper_before


def test_reload_all_restarts_unchanged_programs_too(run_env: RunEnv) -> None:
    run_env.write(
        """
        [program.sleeper]
        command = ["sleep", "300"]
        """
    )
    run_env.start()
    old = run_env.instance("sleeper")["pid"]
    done = run_env.ctl("reload", "--all")
    assert done.returncode == 0, done.stderr
    new = run_env.instance("sleeper")
    assert new["generation"] == 2 and new["pid"] != old
    assert not pid_alive(old)


def test_reload_with_a_broken_config_keeps_everything_running(run_env: RunEnv) -> None:
    run_env.write(
        """
        [program.sleeper]
        command = ["sleep", "300"]
        """
    )
    run_env.start()
    old = run_env.instance("sleeper")["pid"]
    run_env.config.write_text(run_env.config.read_text() + "\nbogus_key = 1\n")
    done = run_env.ctl("reload")
    assert done.returncode != 0
    assert "bogus_key" in done.stderr
    assert run_env.instance("sleeper")["pid"] == old
