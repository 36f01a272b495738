"""Suite-wide guards: every process a test starts is marked, and none may outlive it.

Each test runs with ``CORRAL_TEST_ID=<id>`` in the environment, which every
process it starts inherits (at any depth, through ``setsid`` and double forks).
After the test, a /proc scan finds any process still carrying that id: the test
fails and those pids (and only those) are killed. At the end of the session the
same scan runs for the whole session's marker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.helpers.procs import children_zombies, marked_pids, wait_gone

SESSION_MARKER = "CORRAL_TEST_SESSION"
TEST_MARKER = "CORRAL_TEST_ID"

os.environ.setdefault(SESSION_MARKER, uuid.uuid4().hex[:16])
# Hypothesis keeps its example database out of the checkout's way.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", "/tmp/corral-hypothesis")


@pytest.fixture(autouse=True)
def _no_stray_processes(request: pytest.FixtureRequest) -> Iterator[None]:
    test_id = uuid.uuid4().hex[:16]
    os.environ[TEST_MARKER] = test_id
    try:
        yield
    finally:
        os.environ[TEST_MARKER] = "between-tests"
    strays = wait_gone(lambda: marked_pids(TEST_MARKER, test_id), timeout_s=5.0)
    zombies = children_zombies()
    for pid in strays:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_gone(lambda: marked_pids(TEST_MARKER, test_id), timeout_s=5.0)
    children_zombies()  # reaps what we just killed
    if strays:
        pytest.fail(f"{request.node.nodeid} left processes running: {strays}")
    if zombies:
        pytest.fail(f"{request.node.nodeid} left unreaped children: {zombies}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    session_id = os.environ[SESSION_MARKER]
    deadline = time.monotonic() + 5.0
    strays = [p for p in marked_pids(SESSION_MARKER, session_id) if _is_test_child(p)]
    while strays and time.monotonic() < deadline:
        time.sleep(0.1)
        strays = [p for p in marked_pids(SESSION_MARKER, session_id) if _is_test_child(p)]
    if strays:
        for pid in strays:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\nprocesses outlived the test session (killed now): {strays}")


def _is_test_child(pid: int) -> bool:
    """Processes that tests started carry CORRAL_TEST_ID; pytest's own do not."""
    from tests.helpers.procs import environ_of

    return TEST_MARKER.encode() in environ_of(pid)
