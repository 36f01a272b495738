"""The task API as the issue writes it: Corral, @app.task, delay/send/send_many, handles."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from corral import (
    ConfigError,
    Corral,
    ResultHandle,
    ResultTimeout,
    TaskFailed,
    TaskRevoked,
    TaskState,
)
from corral.brokers.base import Envelope
from corral.brokers.sqlite import SqliteBroker
from tests.apps import api_app
from tests.apps.api_app import ApiApp, build
from tests.apps.worker_proc import running_worker


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiApp]:
    built = build(f"sqlite:///{tmp_path}/t.db")
    yield built
    built.app.close()


def ready_in(app: Corral, queue: str = "default") -> int:
    """Messages waiting (ready or scheduled) in ``queue``."""
    for stats in app.broker.queue_stats():
        if stats.queue == queue:
            return stats.ready + stats.scheduled
    return 0


# -- constructing an app ------------------------------------------------------------------


def test_app_from_url_touches_nothing_until_used(tmp_path: Path) -> None:
    app = Corral(f"sqlite:///{tmp_path}/t.db")
    assert app.broker_url == f"sqlite:///{tmp_path}/t.db"
    assert not (tmp_path / "t.db").exists()
    app.broker.queue_stats()
    assert (tmp_path / "t.db").exists()
    app.close()


def test_app_from_broker_instance(tmp_path: Path) -> None:
    broker = SqliteBroker(tmp_path / "b.db")
    app = Corral(broker=broker)
    assert app.broker is broker
    assert app.broker_url == broker.url
    app.close()


def test_default_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_BROKER_URL", "sqlite:///from-env.db")
    assert Corral().broker_url == "sqlite:///from-env.db"


def test_default_url_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CORRAL_BROKER_URL", raising=False)
    assert Corral().broker_url == "sqlite:///corral.db"


def test_explicit_url_beats_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_BROKER_URL", "sqlite:///from-env.db")
    assert Corral("sqlite:///given.db").broker_url == "sqlite:///given.db"


# -- registering tasks --------------------------------------------------------------------


def test_plain_call_runs_inline(api: ApiApp) -> None:
    assert api.add(1, 2) == 3
    assert ready_in(api.app) == 0


def test_task_keeps_name_and_function(api: ApiApp) -> None:
    assert api.add.name == "tests.apps.api_app.add"
    assert api.add.__wrapped__.__name__ == "add"
    assert api.app.get_task("tests.apps.api_app.add") is api.add


def test_decorator_with_options(tmp_path: Path) -> None:
    app = Corral(f"sqlite:///{tmp_path}/t.db")

    @app.task(queue="default", priority=0, retries=3, timeout_s=None, lease_s=30)
    def mul(x: int, y: int) -> int:
        return x * y

    assert mul(2, 3) == 6
    assert mul.options.retries == 3
    assert mul.options.lease_s == 30
    assert mul.options.timeout_s is None


def test_decorator_name_option(tmp_path: Path) -> None:
    app = Corral(f"sqlite:///{tmp_path}/t.db")

    @app.task(name="sms.send")
    def send_sms(number: str) -> None: ...

    assert send_sms.name == "sms.send"
    assert app.get_task("sms.send") is send_sms


def test_bare_decorator(tmp_path: Path) -> None:
    app = Corral(f"sqlite:///{tmp_path}/t.db")

    @app.task
    def one() -> int:
        return 1

    assert one() == 1
    assert one.options.queue == "default"


# -- sending ------------------------------------------------------------------------------


def test_delay_returns_a_queued_handle(api: ApiApp) -> None:
    handle = api.add.delay(1, 2)
    assert isinstance(handle, ResultHandle)
    assert isinstance(handle.id, str) and handle.id
    assert handle.status() is TaskState.QUEUED
    assert not handle.ready()
    assert ready_in(api.app) == 1


def test_send_with_options(api: ApiApp) -> None:
    handle = api.add.send(args=(1, 2), kwargs={}, priority=9, queue="high", task_id="my-id")
    assert handle.id == "my-id"
    assert handle.status() is TaskState.QUEUED
    assert ready_in(api.app, "high") == 1
    assert ready_in(api.app, "default") == 0


def test_send_options_are_keyword_only(api: ApiApp) -> None:
    with pytest.raises(TypeError):
        api.add.send((1, 2))  # type: ignore[call-arg]


def test_countdown_is_stored_as_scheduled(api: ApiApp) -> None:
    handle = api.add.send(args=(1, 2), countdown_s=60)
    assert handle.status() is TaskState.SCHEDULED
    assert [s.scheduled for s in api.app.broker.queue_stats()] == [1]


def test_eta_is_stored_as_scheduled(api: ApiApp) -> None:
    handle = api.add.send(args=(1, 2), eta=datetime.now(UTC) + timedelta(minutes=5))
    assert handle.status() is TaskState.SCHEDULED


def test_countdown_and_eta_together_is_a_config_error(api: ApiApp) -> None:
    with pytest.raises(ConfigError, match="countdown_s or eta"):
        api.add.send(args=(1, 2), countdown_s=5, eta=datetime.now(UTC))
    assert ready_in(api.app) == 0


def test_naive_eta_is_a_config_error(api: ApiApp) -> None:
    with pytest.raises(ConfigError, match="timezone-aware"):
        api.add.send(args=(1, 2), eta=datetime.now() + timedelta(minutes=5))
    assert ready_in(api.app) == 0


def test_bad_per_call_priority_names_the_task_and_option(api: ApiApp) -> None:
    with pytest.raises(ConfigError, match=r"tests\.apps\.api_app\.add\(\): option 'priority'"):
        api.add.send(args=(1, 2), priority=1000)
    assert ready_in(api.app) == 0


def test_same_task_id_twice_while_pending_is_one_message(api: ApiApp) -> None:
    first = api.add.send(args=(1, 2), task_id="once")
    second = api.add.send(args=(1, 2), task_id="once")
    assert first == second
    assert ready_in(api.app) == 1


class CountingBroker(SqliteBroker):
    """A real SQLite broker that counts its send() calls (round trips)."""

    sends = 0

    def send(self, envelopes: Sequence[Envelope]) -> None:
        self.sends += 1
        super().send(envelopes)


def test_send_many_is_one_broker_call(tmp_path: Path) -> None:
    broker = CountingBroker(tmp_path / "t.db")
    app = Corral(broker=broker)
    add = app.task(api_app.add)
    handles = add.send_many([((1, 2), {}), ((3, 4), {}), ((), {"x": 5, "y": 6})])
    assert broker.sends == 1
    assert len(handles) == 3
    assert len({h.id for h in handles}) == 3
    assert all(h.status() is TaskState.QUEUED for h in handles)
    assert ready_in(app) == 3
    app.close()


def test_send_many_of_nothing_sends_nothing(tmp_path: Path) -> None:
    broker = CountingBroker(tmp_path / "t.db")
    app = Corral(broker=broker)
    add = app.task(api_app.add)
    assert add.send_many([]) == []
    assert broker.sends == 0
    app.close()


def test_send_by_name_for_a_task_not_imported(tmp_path: Path) -> None:
    app = Corral(f"sqlite:///{tmp_path}/t.db")  # registers nothing
    handle = app.send("tests.apps.api_app.add", 1, 2)
    assert handle.status() is TaskState.QUEUED
    assert ready_in(app) == 1
    app.close()


# -- handles without a worker -------------------------------------------------------------


def test_get_past_its_timeout_raises_result_timeout(api: ApiApp) -> None:
    handle = api.add.delay(1, 2)
    with pytest.raises(ResultTimeout) as caught:
        handle.get(timeout_s=0.2)
    assert caught.value.task_id == handle.id
    assert caught.value.timeout_s == 0.2


def test_revoked_task_raises_task_revoked(api: ApiApp) -> None:
    handle = api.add.delay(1, 2)
    assert handle.revoke() is True
    assert handle.status() is TaskState.REVOKED
    assert handle.ready()
    assert ready_in(api.app) == 0
    with pytest.raises(TaskRevoked) as caught:
        handle.get(timeout_s=5)
    assert caught.value.task_id == handle.id


def test_revoking_twice_reports_nothing_revoked(api: ApiApp) -> None:
    handle = api.add.delay(1, 2)
    assert handle.revoke()
    assert handle.revoke() is False


def test_handles_compare_by_id(api: ApiApp) -> None:
    handle = api.add.delay(1, 2)
    same: ResultHandle[int] = ResultHandle(api.app, handle.id)
    assert handle == same and hash(handle) == hash(same)
    assert repr(handle) == f"ResultHandle({handle.id!r})"


# -- with a real worker -------------------------------------------------------------------


@pytest.fixture
def worked(api: ApiApp, tmp_path: Path) -> Iterator[ApiApp]:
    with running_worker(api.app, tmp_path / "worker.log"):
        yield api


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_delay_then_get(worked: ApiApp) -> None:
    handle = worked.add.delay(1, 2)
    assert handle.get(timeout_s=10) == 3
    assert handle.status() is TaskState.SUCCEEDED
    assert handle.ready()


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_send_many_all_run(worked: ApiApp) -> None:
    handles = worked.add.send_many([((i, i), {}) for i in range(20)])
    assert [h.get(timeout_s=20) for h in handles] == [2 * i for i in range(20)]


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_failed_task_carries_the_remote_error(worked: ApiApp) -> None:
    handle = worked.fail.delay("the printer is on fire")
    with pytest.raises(TaskFailed) as caught:
        handle.get(timeout_s=10)
    error = caught.value
    assert error.task_id == handle.id
    assert error.type_name == "ValueError"
    assert error.remote_message == "the printer is on fire"
    assert "Traceback (most recent call last)" in error.remote_traceback
    assert "raise ValueError(message)" in error.remote_traceback
    assert "the printer is on fire" in str(error)
    assert handle.status() is TaskState.FAILED
    assert handle.ready()


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_send_by_name_runs_on_the_worker(worked: ApiApp) -> None:
    client = Corral(worked.app.broker_url)  # this process never imported the task here
    assert client.send("tests.apps.api_app.add", 1, 2).get(timeout_s=10) == 3
    client.close()


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_arguments_round_trip_their_types(worked: ApiApp) -> None:
    when = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    handle = worked.echo.delay(b"\x00\xff", (1, 2), when, key={3, 4})
    assert handle.get(timeout_s=10) == {
        "args": [b"\x00\xff", (1, 2), when],
        "kwargs": {"key": {3, 4}},
    }


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_countdown_task_runs_after_its_delay(worked: ApiApp) -> None:
    handle = worked.add.send(args=(2, 3), countdown_s=0.5)
    assert handle.status() in (TaskState.SCHEDULED, TaskState.QUEUED, TaskState.SUCCEEDED)
    assert handle.get(timeout_s=15) == 5


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_task_the_worker_does_not_know_ends_dead(worked: ApiApp) -> None:
    handle = worked.app.send("tests.apps.api_app.not_registered", 1)
    with pytest.raises(TaskFailed) as caught:
        handle.get(timeout_s=10)
    assert "not_registered" in caught.value.remote_message
    assert handle.status() is TaskState.DEAD
    assert handle.ready()
