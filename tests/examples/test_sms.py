"""examples/sms end to end: a deploy under load loses nothing and leaves nothing old.

Issue 6's acceptance story (seeds/002): `corral run` runs the example's web app
on a shared socket, two corral workers and a `bash -c` loop. A client posts
SMS requests without pause while the template file and a line of task code
change and `corral ctl reload --all` rolls everything to a new generation. Once
the reload has returned: no row is sent by old code or with the old template,
no process of the old generation is left, no request failed, no task is lost;
and `corral ctl shutdown` leaves no process at all.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import sqlite3
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from corral import Corral, TaskState
from tests.conftest import TEST_MARKER
from tests.helpers.procs import marked_pids, poll_for, wait_gone
from tests.supervisor.conftest import RunEnv, pid_alive

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sms"
NEW_TEMPLATE = "NEW: $phone, your parcel arrives today."


@dataclass
class Sms:
    """The example copied to a temporary directory, run by `corral run`."""

    run: RunEnv
    port: int
    app: Corral

    @property
    def dir(self) -> Path:
        return self.run.workdir

    def rows(self, *, after_id: int = 0) -> list[tuple[int, str, str]]:
        """(id, template, code_version) of the rows of sent.db after ``after_id``."""
        if not (self.dir / "sent.db").exists():
            return []
        query = "SELECT id, template, code_version FROM sent WHERE id > ? ORDER BY id"
        db = sqlite3.connect(self.dir / "sent.db", timeout=30)
        try:
            return list(db.execute(query, (after_id,)))
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):
                return []  # the first task is creating it
            raise
        finally:
            db.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sms(tmp_path: Path) -> Iterator[Sms]:
    workdir = tmp_path / "sms"
    leftovers = shutil.ignore_patterns("__pycache__", ".corral", "*.db*", "*.log")
    shutil.copytree(EXAMPLE, workdir, ignore=leftovers)
    run = RunEnv(workdir, "cgroup")
    port = _free_port()
    config = (EXAMPLE / "corral.toml").read_text()
    run.write(config.replace('address = "127.0.0.1:8000"', f'address = "127.0.0.1:{port}"'))
    # The example runs `python web.py`: the python of this virtualenv, as if activated.
    run.env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    app = Corral(f"sqlite:///{workdir / 'sms.db'}")
    try:
        yield Sms(run, port, app)
    finally:
        app.close()
        run.stop()


class Client(threading.Thread):
    """POSTs /sms one request after another until stopped; every task id, every failure."""

    def __init__(self, port: int, *, max_requests: int = 20_000) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.max_requests = max_requests
        self.stopped = threading.Event()
        self.task_ids: list[str] = []
        self.failures: list[str] = []

    def run(self) -> None:
        for n in range(self.max_requests):
            if self.stopped.is_set():
                return
            try:
                self._post(f"+1555{n:07d}")
            except OSError as error:
                self.failures.append(f"request {n}: {error!r}")

    def _post(self, phone: str) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            body = json.dumps({"phone": phone, "template_id": 1})
            connection.request("POST", "/sms", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            answer = response.read()
        finally:
            connection.close()
        if response.status != 202:
            self.failures.append(f"{phone}: HTTP {response.status} {answer[:200]!r}")
        else:
            self.task_ids.append(json.loads(answer)["task_id"])


def _deploy(sms: Sms) -> None:
    """What a deploy changes: the template file and a line of task code."""
    (sms.dir / "templates" / "1.txt").write_text(NEW_TEMPLATE + "\n")
    tasks = sms.dir / "tasks.py"
    code = tasks.read_text()
    assert 'CODE_VERSION = "v1"' in code
    tasks.write_text(code.replace('CODE_VERSION = "v1"', 'CODE_VERSION = "v2"'))


def _all_pids(status: dict[str, object]) -> set[int]:
    instances = status["instances"]
    assert isinstance(instances, list)
    return {p["pid"] for i in instances for p in i["processes"]}


def _unfinished(app: Corral, task_ids: list[str]) -> list[str]:
    """Task ids not SUCCEEDED yet; a task that ended otherwise fails the test now."""
    pending = []
    for task_id in task_ids:
        state = app.task_state(task_id)
        assert state in (TaskState.SUCCEEDED, *(s for s in TaskState if not s.final)), (
            f"task {task_id} ended {state.value}"
        )
        if state is not TaskState.SUCCEEDED:
            pending.append(task_id)
    return pending


def test_reload_under_load_sends_nothing_stale_and_loses_nothing(sms: Sms) -> None:
    sms.run.start()
    old_template = (sms.dir / "templates" / "1.txt").read_text().strip()
    client = Client(sms.port)
    client.start()
    assert poll_for(lambda: len(sms.rows()) >= 20, timeout_s=60), client.failures
    old_pids = _all_pids(sms.run.status())

    _deploy(sms)
    done = sms.run.ctl("reload", "--all", timeout_s=120)
    last_old_id = max(row[0] for row in sms.rows())
    status = sms.run.status()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reloaded: web, sms, heartbeat" in done.stdout

    # Zero processes of an older generation, by corral's account and by /proc's.
    for instance in status["instances"]:
        assert instance["generation"] == 2, instance
        assert instance["stale"] == [], instance
        assert {p["generation"] for p in instance["processes"]} == {2}, instance
    assert [pid for pid in old_pids if pid_alive(pid)] == []

    posted_at_reload = len(client.task_ids)
    assert poll_for(lambda: len(client.task_ids) >= posted_at_reload + 50, timeout_s=60)
    client.stopped.set()
    client.join(timeout=60)
    assert not client.is_alive()
    assert client.failures == []

    # Zero lost tasks: every task the web app accepted ran to success.
    assert poll_for(lambda: not _unfinished(sms.app, client.task_ids), timeout_s=120)

    after = sms.rows(after_id=last_old_id)
    before = [row for row in sms.rows() if row[0] <= last_old_id]
    assert {(template, version) for _, template, version in before} >= {(old_template, "v1")}
    assert after, "no SMS was sent after the reload"
    assert {(template, version) for _, template, version in after} == {(NEW_TEMPLATE, "v2")}
    assert len(before) + len(after) >= len(client.task_ids)  # at least once each
    assert (sms.dir / "heartbeat.log").read_text().count("\n") >= 1

    done = sms.run.ctl("shutdown", timeout_s=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sms.run.process is not None
    assert sms.run.process.wait(timeout=60) == 0, sms.run.log()
    assert wait_gone(lambda: marked_pids(TEST_MARKER, os.environ[TEST_MARKER]), timeout_s=10) == []


def test_reload_without_all_restarts_nothing_after_a_code_change(sms: Sms) -> None:
    # `reload` restarts only programs whose config changed: after a deploy that
    # changed only files, every process keeps running the code it had loaded.
    # That is why the test above (and a deploy) uses `reload --all`.
    sms.run.start()
    old_pids = _all_pids(sms.run.status())
    _deploy(sms)
    done = sms.run.ctl("reload", timeout_s=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "unchanged: web, sms, heartbeat" in done.stdout
    status = sms.run.status()
    assert {i["generation"] for i in status["instances"]} == {1}
    main_pids = {i["pid"] for i in status["instances"]}
    assert main_pids <= old_pids
    assert all(pid_alive(pid) for pid in main_pids)


def _request(port: int, method: str, path: str, body: str = "") -> tuple[int, dict[str, str]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_web_app_validates_requests_and_reports_task_states(sms: Sms) -> None:
    sms.run.start()
    for body, complaint in [
        ("not json", "JSON object"),
        ('{"phone": "555", "template_id": 1}', "phone"),
        ('{"phone": "+15550100", "template_id": "1"}', "template_id"),
        ('{"phone": "+15550100", "template_id": 99}', "no template 99"),
    ]:
        status, answer = _request(sms.port, "POST", "/sms", body)
        assert (status, complaint in answer["error"]) == (400, True), (body, answer)
    status, answer = _request(sms.port, "POST", "/sms", '{"phone": "+15550100", "template_id": 2}')
    assert status == 202
    task_id = answer["task_id"]
    assert sms.app.wait_result(task_id, timeout_s=60) == 1  # the row id
    assert _request(sms.port, "GET", f"/sms/{task_id}") == (
        200,
        {"task_id": task_id, "state": "succeeded"},
    )
    assert _request(sms.port, "GET", "/sms/nope")[0] == 404
