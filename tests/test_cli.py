"""The ``corral`` command line, run as a user runs it: ``python -m corral.cli.main ...``.

Every bad input ends in one clear line on stderr and a named exit code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral import Corral, ExitCode, TaskState
from tests.apps.api_app import ApiApp, build
from tests.apps.worker_proc import REPO, running_worker

APP = "tests.apps.api_worker:app"
ADD = "tests.apps.api_app.add"
FAIL = "tests.apps.api_app.fail"


class Cli:
    """Runs ``corral`` against one broker URL."""

    def __init__(self, url: str) -> None:
        self.env = {**os.environ, "CORRAL_BROKER_URL": url, "PYTHONPATH": str(REPO)}

    def __call__(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "corral.cli.main", *args],
            cwd=REPO,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiApp]:
    built = build(f"sqlite:///{tmp_path}/t.db")
    yield built
    built.app.close()


@pytest.fixture
def corral(api: ApiApp) -> Cli:
    return Cli(api.app.broker_url)


def waiting(app: Corral, queue: str = "default") -> int:
    return sum(s.ready + s.scheduled for s in app.broker.queue_stats() if s.queue == queue)


def one_line_error(run: subprocess.CompletedProcess[str], code: ExitCode, *parts: str) -> None:
    """The command failed with ``code`` and a single ``error:`` line naming ``parts``."""
    assert run.returncode == code, (run.returncode, run.stdout, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: "), run.stderr
    assert "Traceback" not in run.stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])


# -- help --------------------------------------------------------------------------------

COMMANDS = [
    [],
    ["worker"],
    ["send"],
    ["result"],
    ["status"],
    ["revoke"],
    ["purge"],
    ["dead"],
    ["dead", APP, "list"],
    ["dead", APP, "requeue"],
    ["dead", APP, "purge"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "corral")
def test_help(corral: Cli, command: list[str]) -> None:
    run = corral(*command, "--help")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("Usage: ")
    assert run.stderr == ""


def test_help_lists_every_command(corral: Cli) -> None:
    listed = corral("--help").stdout
    for name in ("worker", "send", "result", "status", "revoke", "dead", "purge"):
        assert f"  {name} " in listed, name


def test_dead_subcommand_help_does_not_import_the_app(corral: Cli) -> None:
    assert corral("dead", "no_such_module:app", "list", "--help").returncode == 0


def test_version(corral: Cli) -> None:
    run = corral("--version")
    assert run.returncode == 0
    assert "0.1.0" in run.stdout


def test_unknown_command_is_a_usage_error(corral: Cli) -> None:
    run = corral("frobnicate")
    assert run.returncode == ExitCode.USAGE
    assert "No such command 'frobnicate'" in run.stderr


# -- send, status, result, revoke, purge without a worker ---------------------------------


def test_send_prints_the_id_and_enqueues(api: ApiApp, corral: Cli) -> None:
    run = corral("send", APP, ADD, "--args", "[1, 2]")
    assert run.returncode == 0, run.stderr
    task_id = run.stdout.strip()
    assert api.app.task_state(task_id) is TaskState.QUEUED
    assert waiting(api.app) == 1


def test_send_with_kwargs_queue_and_countdown(api: ApiApp, corral: Cli) -> None:
    run = corral(
        "send", APP, ADD, "--kwargs", '{"x": 1, "y": 2}', "--queue", "high", "--countdown-s", "60"
    )
    assert run.returncode == 0, run.stderr
    assert api.app.task_state(run.stdout.strip()) is TaskState.SCHEDULED
    assert waiting(api.app, "high") == 1


def test_status_table(api: ApiApp, corral: Cli) -> None:
    api.add.delay(1, 2)
    api.add.send(args=(1, 2), queue="high")
    run = corral("status", APP)
    assert run.returncode == 0, run.stderr
    assert "queues" in run.stdout and "workers" in run.stdout
    assert "default" in run.stdout and "high" in run.stdout


def test_status_json(api: ApiApp, corral: Cli) -> None:
    api.add.delay(1, 2)
    api.add.send(args=(1, 2), countdown_s=60)
    run = corral("status", APP, "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["queues"] == [
        {"queue": "default", "ready": 1, "scheduled": 1, "running": 0, "dead": 0}
    ]
    assert report["workers"] == []


def test_result_of_a_pending_task(api: ApiApp, corral: Cli) -> None:
    handle = api.add.delay(1, 2)
    run = corral("result", APP, handle.id)
    assert run.returncode == ExitCode.TASK_FAILED
    assert run.stdout.strip() == "queued"


def test_result_wait_times_out(api: ApiApp, corral: Cli) -> None:
    handle = api.add.delay(1, 2)
    run = corral("result", APP, handle.id, "--wait", "--timeout-s", "0.2")
    assert run.returncode == ExitCode.TASK_FAILED
    assert run.stdout.strip() == "queued"


def test_result_of_an_unknown_id(corral: Cli) -> None:
    one_line_error(corral("result", APP, "nope"), ExitCode.TASK_FAILED, "task nope is unknown")


def test_revoke(api: ApiApp, corral: Cli) -> None:
    handle = api.add.delay(1, 2)
    run = corral("revoke", APP, handle.id)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"revoked {handle.id}"
    assert handle.status() is TaskState.REVOKED
    again = corral("revoke", APP, handle.id)
    assert again.returncode == ExitCode.FAILURE
    assert "nothing revoked" in again.stdout
    result = corral("result", APP, handle.id)
    one_line_error(result, ExitCode.TASK_FAILED, f"task {handle.id} was revoked")


def test_purge_a_queue(api: ApiApp, corral: Cli) -> None:
    api.add.send_many([((i, i), {}) for i in range(3)])
    api.add.send(args=(1, 1), queue="other")
    run = corral("purge", APP, "default", "--yes")
    assert run.returncode == 0, run.stderr
    assert "deleted 3 messages from default" in run.stdout
    assert waiting(api.app) == 0
    assert waiting(api.app, "other") == 1


def test_purge_asks_first(api: ApiApp, corral: Cli) -> None:
    api.add.delay(1, 2)
    run = corral("purge", APP, "default", stdin="n\n")
    assert run.returncode == ExitCode.FAILURE
    assert "aborted" in run.stderr
    assert waiting(api.app) == 1


# -- with a worker ------------------------------------------------------------------------


@pytest.fixture
def worked(api: ApiApp, tmp_path: Path) -> Iterator[ApiApp]:
    with running_worker(api.app, tmp_path / "worker.log"):
        yield api


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_send_wait_prints_the_result(worked: ApiApp, corral: Cli) -> None:
    run = corral("send", APP, ADD, "--args", "[1, 2]", "--wait", "--timeout-s", "20")
    assert run.returncode == 0, run.stderr
    task_id, value = run.stdout.split()
    assert value == "3"
    assert worked.app.task_state(task_id) is TaskState.SUCCEEDED
    result = corral("result", APP, task_id)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_send_wait_on_a_failing_task(worked: ApiApp, corral: Cli) -> None:
    run = corral("send", APP, FAIL, "--args", '["out of paper"]', "--wait", "--timeout-s", "20")
    one_line_error(run, ExitCode.TASK_FAILED, "failed: ValueError: out of paper")
    task_id = run.stdout.strip()
    result = corral("result", APP, task_id)
    one_line_error(result, ExitCode.TASK_FAILED, f"task {task_id} failed: ValueError")


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_dead_letters_list_requeue_purge(api: ApiApp, corral: Cli, tmp_path: Path) -> None:
    with running_worker(api.app, tmp_path / "worker.log"):
        first, second = api.fail.delay("one"), api.fail.delay("two")
        for handle in (first, second):
            assert corral("result", APP, handle.id, "--wait", "--timeout-s", "20").returncode == 4
    listed = corral("dead", APP, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    letters = json.loads(listed.stdout)
    assert {letter["id"] for letter in letters} == {first.id, second.id}
    assert {letter["error"] for letter in letters} == {"ValueError: one", "ValueError: two"}
    assert all(letter["task"] == FAIL for letter in letters)

    table = corral("dead", APP, "list")
    assert table.returncode == 0, table.stderr
    assert "dead letters (2)" in table.stdout

    requeued = corral("dead", APP, "requeue", first.id)
    assert requeued.returncode == 0, requeued.stderr
    assert requeued.stdout.strip() == f"requeued {first.id}"
    assert waiting(api.app) == 1
    assert corral("dead", APP, "requeue", first.id).returncode == ExitCode.FAILURE

    refused = corral("dead", APP, "purge", stdin="n\n")
    assert refused.returncode == ExitCode.FAILURE
    purged = corral("dead", APP, "purge", "--yes")
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout.strip() == "deleted 1 dead letters"
    assert json.loads(corral("dead", APP, "list", "--json").stdout) == []


# -- bad inputs: one line, a named exit code ------------------------------------------------


def test_missing_module(corral: Cli) -> None:
    run = corral("send", "no_such_module:app", ADD)
    one_line_error(run, ExitCode.CONFIG, "cannot import module 'no_such_module'", "PYTHONPATH")


def test_attribute_that_is_not_an_app(corral: Cli) -> None:
    run = corral("send", "tests.apps.api_worker:add", ADD)
    one_line_error(run, ExitCode.CONFIG, "tests.apps.api_worker.add is a Task, not a Corral app")


def test_missing_attribute(corral: Cli) -> None:
    run = corral("status", "tests.apps.api_worker:nope")
    one_line_error(run, ExitCode.CONFIG, "tests.apps.api_worker.nope is nothing")


def test_malformed_app_reference(corral: Cli) -> None:
    run = corral("status", "not a ref")
    one_line_error(run, ExitCode.CONFIG, "'not a ref' is not of the form MODULE:ATTRIBUTE")


def test_unknown_task_name(api: ApiApp, corral: Cli) -> None:
    run = corral("send", APP, "tests.apps.api_app.nope")
    one_line_error(run, ExitCode.CONFIG, "no task named 'tests.apps.api_app.nope'", ADD)
    assert waiting(api.app) == 0


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--args", "[1, 2", "--args is not valid JSON"),
        ("--args", '{"x": 1}', "--args must be a JSON array"),
        ("--kwargs", "{x: 1}", "--kwargs is not valid JSON"),
        ("--kwargs", "[1]", "--kwargs must be a JSON object"),
    ],
)
def test_invalid_json_arguments(
    api: ApiApp, corral: Cli, option: str, value: str, says: str
) -> None:
    one_line_error(corral("send", APP, ADD, option, value), ExitCode.CONFIG, says)
    assert waiting(api.app) == 0


def test_worker_with_a_missing_module(corral: Cli) -> None:
    run = corral("worker", "no_such_module:app", "-c", "1")
    one_line_error(run, ExitCode.CONFIG, "cannot import module 'no_such_module'")


def test_bad_broker_url(corral: Cli) -> None:
    corral.env["CORRAL_BROKER_URL"] = "not-a-url"
    one_line_error(corral("status", APP), ExitCode.CONFIG, "'not-a-url' is not a URL")


def test_long_errors_stay_on_one_line(corral: Cli) -> None:
    corral.env["COLUMNS"] = "40"  # narrower than the message: it must not wrap
    run = corral("send", "a_module_name_long_enough_to_wrap_the_line_somewhere:app", ADD)
    one_line_error(run, ExitCode.CONFIG, "a_module_name_long_enough_to_wrap_the_line_somewhere")


def test_error_text_is_not_read_as_markup(corral: Cli) -> None:
    run = corral("send", APP, "[bold]x[/bold]")
    one_line_error(run, ExitCode.CONFIG, "no task named '[bold]x[/bold]'")


def test_bad_task_option_on_the_command_line(api: ApiApp, corral: Cli) -> None:
    run = corral("send", APP, ADD, "--args", "[1, 2]", "--priority", "1000")
    one_line_error(run, ExitCode.CONFIG, f"{ADD}(): option 'priority' must be an int")
    assert waiting(api.app) == 0


def test_worker_with_a_bad_option(corral: Cli) -> None:
    one_line_error(corral("worker", APP, "-c", "0"), ExitCode.CONFIG, "--concurrency")
