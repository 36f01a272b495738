"""The errors the app raises: one root, split by meaning, messages that name the culprit.

Codec at send (P7): an argument the codec cannot encode, or a call too large to
send, raises in the caller and sends nothing.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path, PosixPath
from typing import Any

import pytest

import corral
import corral.errors
from corral import (
    BrokerError,
    BrokerUnavailable,
    CodecError,
    ConfigError,
    Corral,
    CorralError,
    DecodeError,
    EncodeError,
    PayloadTooLarge,
    ResultError,
    ResultTimeout,
    SoftTimeLimitExceeded,
    TaskFailed,
    TaskRevoked,
    TimeLimitExceeded,
    UnknownTask,
)
from corral.errors import SupervisorUnavailable
from corral.options import option_names

# -- the hierarchy ------------------------------------------------------------------------

PARENT = {
    ConfigError: CorralError,
    UnknownTask: ConfigError,
    CodecError: CorralError,
    EncodeError: CodecError,
    DecodeError: CodecError,
    PayloadTooLarge: CorralError,
    BrokerError: CorralError,
    BrokerUnavailable: BrokerError,
    ResultError: CorralError,
    TaskFailed: ResultError,
    TimeLimitExceeded: TaskFailed,
    TaskRevoked: ResultError,
    ResultTimeout: ResultError,
    SoftTimeLimitExceeded: CorralError,
    SupervisorUnavailable: CorralError,
}


def public_errors(module: Any) -> list[type[BaseException]]:
    values = [getattr(module, name) for name in module.__all__]
    return [v for v in values if isinstance(v, type) and issubclass(v, BaseException)]


@pytest.mark.parametrize("module", [corral, corral.errors], ids=["corral", "corral.errors"])
def test_every_public_error_derives_from_the_root(module: Any) -> None:
    errors = public_errors(module)
    assert errors, "no public errors found"
    for error in errors:
        assert issubclass(error, CorralError), error


def test_the_root_is_an_exception() -> None:
    assert CorralError.__bases__ == (Exception,)


@pytest.mark.parametrize("error", list(PARENT), ids=lambda e: e.__name__)
def test_each_error_has_the_parent_the_tree_draws(error: type[CorralError]) -> None:
    assert error.__bases__ == (PARENT[error],)
    assert error.__name__ in (corral.errors.__doc__ or "")


def test_every_public_error_is_in_the_tree() -> None:
    assert set(public_errors(corral.errors)) == set(PARENT) | {CorralError}
    assert set(public_errors(corral)) == set(PARENT) | {CorralError}


def test_errors_are_documented() -> None:
    for error in public_errors(corral.errors):
        assert inspect.getdoc(error), error


def test_task_failed_carries_the_remote_error() -> None:
    error = TaskFailed("abc", type_name="KeyError", message="'k'", traceback="Traceback ...")
    assert (error.task_id, error.type_name) == ("abc", "KeyError")
    assert (error.remote_message, error.remote_traceback) == ("'k'", "Traceback ...")
    assert str(error) == "task abc failed: KeyError: 'k'"


def test_result_timeout_and_revoked_name_the_task() -> None:
    assert "abc" in str(ResultTimeout("abc", 1.5)) and "1.5 s" in str(ResultTimeout("abc", 1.5))
    assert str(TaskRevoked("abc")) == "task abc was revoked"


# -- app configuration --------------------------------------------------------------------


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Corral]:
    built = Corral(f"sqlite:///{tmp_path}/t.db")
    yield built
    built.close()


def queued(app: Corral) -> int:
    return sum(s.ready + s.scheduled for s in app.broker.queue_stats())


def test_url_without_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"'corral\.db' is not a URL; use e\.g\. 'sqlite:///"):
        Corral("corral.db")


def test_unknown_codec_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="yaml"):
        Corral("sqlite:///x.db", codec="yaml")


@pytest.mark.parametrize("bad", [0, -1, 1.5, "1"])
def test_bad_max_payload_bytes_is_a_config_error(bad: Any) -> None:
    with pytest.raises(ConfigError, match="max_payload_bytes"):
        Corral("sqlite:///x.db", max_payload_bytes=bad)


def test_unknown_task_option_lists_the_valid_ones(app: Corral) -> None:
    def send_sms(number: str) -> None: ...

    with pytest.raises(ConfigError) as caught:
        app.task(retrys=3)(send_sms)  # type: ignore[call-overload]
    message = str(caught.value)
    assert "send_sms(): unknown task option 'retrys'" in message
    for name in option_names():
        assert name in message
    assert not app.tasks


def test_task_options_are_keyword_only(app: Corral) -> None:
    with pytest.raises(ConfigError, match="keyword-only"):
        app.task("default")  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("queue", ""),
        ("queue", "two words"),
        ("priority", "high"),
        ("priority", 256),
        ("retries", -1),
        ("retries", True),
        ("lease_s", 0.5),
        ("timeout_s", 0),
        ("soft_timeout_s", -1),
        ("max_deliveries", 0),
        ("result_ttl_s", 0),
        ("retry_on", ValueError),
        ("leftovers", "ignore"),
    ],
)
def test_bad_option_value_names_task_and_option(app: Corral, option: str, value: Any) -> None:
    def send_sms(number: str) -> None: ...

    with pytest.raises(ConfigError) as caught:
        app.task(**{option: value})(send_sms)
    assert "send_sms(): option " + repr(option) in str(caught.value)


def test_soft_limit_must_be_below_hard_limit(app: Corral) -> None:
    def slow() -> None: ...

    with pytest.raises(ConfigError, match=r"'soft_timeout_s' .* below 'timeout_s'"):
        app.task(timeout_s=5, soft_timeout_s=5)(slow)


def test_two_tasks_with_one_name_is_a_config_error(app: Corral) -> None:
    def first() -> None: ...

    def second() -> None: ...

    app.task(name="same")(first)
    with pytest.raises(ConfigError, match="two tasks are named 'same'"):
        app.task(name="same")(second)


def test_unknown_task_lists_the_known_ones(app: Corral) -> None:
    def known() -> None: ...

    task = app.task(known)
    with pytest.raises(UnknownTask, match=f"no task named 'nope'.*known tasks: {task.name}"):
        app.get_task("nope")


def test_unknown_result_id_is_a_result_error(app: Corral) -> None:
    handle: corral.ResultHandle[None] = corral.ResultHandle(app, "never-sent")
    with pytest.raises(ResultError, match="never-sent is unknown"):
        handle.status()


def test_bad_task_id_is_a_config_error(app: Corral) -> None:
    def job() -> None: ...

    task = app.task(job)
    with pytest.raises(ConfigError, match="task_id"):
        task.send(task_id="")
    assert queued(app) == 0


def test_bad_countdown_is_a_config_error(app: Corral) -> None:
    def job() -> None: ...

    task = app.task(job)
    with pytest.raises(ConfigError, match="countdown_s"):
        task.send(countdown_s="5")  # type: ignore[arg-type]
    assert queued(app) == 0


# -- codec at send (P7) -------------------------------------------------------------------


def send_sms(number: str, meta: dict[str, Any]) -> None:
    """The seeds' example task."""


@pytest.fixture
def sms(app: Corral) -> corral.Task[[str, dict[str, Any]], None]:
    return app.task(send_sms)


NAME = "tests.test_app_errors.send_sms"


def test_unencodable_keyword_argument_is_named(app: Corral, sms: Any) -> None:
    with pytest.raises(EncodeError) as caught:
        sms.delay("555", meta={"path": Path("/tmp/template.txt")})
    assert str(caught.value).startswith(f"{NAME}(): argument 'meta'['path'] is a PosixPath")
    assert "pass str(path)" in str(caught.value)
    assert caught.value.type_name == "PosixPath"
    assert queued(app) == 0


def test_unencodable_positional_argument_is_named_by_its_parameter(app: Corral, sms: Any) -> None:
    with pytest.raises(EncodeError) as caught:
        sms.delay("555", {"path": PosixPath("/x")})
    assert str(caught.value).startswith(f"{NAME}(): argument 'meta'['path'] is a PosixPath")
    with pytest.raises(EncodeError, match=r"argument 'number' is a PosixPath"):
        sms.delay(Path("/x"), {})
    assert queued(app) == 0


def test_unencodable_argument_deep_in_a_list(app: Corral, sms: Any) -> None:
    with pytest.raises(EncodeError, match=r"argument 'meta'\['files'\]\[1\] is a PosixPath"):
        sms.send(args=("555",), kwargs={"meta": {"files": ["a", Path("/b")]}})
    assert queued(app) == 0


def test_unencodable_argument_whose_type_takes_an(app: Corral, sms: Any) -> None:
    # "is an object": the codec's sentence must survive whole, whatever its article.
    with pytest.raises(EncodeError) as caught:
        sms.delay("555", {"x": object()})
    message = str(caught.value)
    assert message.startswith(f"{NAME}(): argument 'meta'['x'] is an object, which the json")
    assert "supported types" in message


def test_unencodable_key_is_named(app: Corral, sms: Any) -> None:
    with pytest.raises(EncodeError, match=r"argument 'meta' has a key that is a PosixPath"):
        sms.delay("555", {Path("/x"): "x"})
    assert queued(app) == 0


def test_argument_that_contains_itself(app: Corral, sms: Any) -> None:
    meta: dict[str, Any] = {}
    meta["self"] = meta
    with pytest.raises(EncodeError, match=r"argument 'meta'\['self'\] contains itself"):
        sms.delay("555", meta)


def test_extra_positional_argument_is_named_by_position(app: Corral, sms: Any) -> None:
    with pytest.raises(EncodeError, match=r"argument #2 \(positional\) is a PosixPath"):
        sms.delay("555", {}, Path("/x"))


def test_unencodable_argument_sent_by_name(app: Corral) -> None:
    with pytest.raises(EncodeError, match=r"remote\.task\(\): argument #0 \(positional\)"):
        app.send("remote.task", Path("/x"))
    with pytest.raises(EncodeError, match=r"remote\.task\(\): argument 'when' is a PosixPath"):
        app.send("remote.task", when=Path("/x"))
    assert queued(app) == 0


def test_unencodable_argument_in_send_many_sends_none_of_them(app: Corral, sms: Any) -> None:
    with pytest.raises(EncodeError, match="argument 'meta'"):
        sms.send_many([(("1", {}), {}), (("2", {"p": Path("/x")}), {})])
    assert queued(app) == 0


def test_default_payload_limit_is_one_mebibyte(app: Corral, sms: Any) -> None:
    assert app.max_payload_bytes == 1 << 20
    sms.delay("555", {"blob": "x" * ((1 << 20) - 1000)})
    assert queued(app) == 1
    with pytest.raises(PayloadTooLarge) as caught:
        sms.delay("555", {"blob": "x" * (1 << 20)})
    message = str(caught.value)
    assert message.startswith(f"{NAME}(): the encoded call is ")
    assert "max_payload_bytes=1,048,576" in message
    assert queued(app) == 1


def test_payload_limit_is_configurable(tmp_path: Path) -> None:
    app = Corral(f"sqlite:///{tmp_path}/t.db", max_payload_bytes=100)
    task = app.task(send_sms)
    with pytest.raises(PayloadTooLarge, match="max_payload_bytes=100"):
        task.delay("555", {"blob": "x" * 100})
    with pytest.raises(PayloadTooLarge):
        task.send_many([(("1", {}), {}), (("2", {"blob": "x" * 100}), {})])
    assert queued(app) == 0
    app.close()


# -- malformed calls ------------------------------------------------------------------------


def add(x: int, y: int) -> int:
    return x + y


@pytest.mark.parametrize(
    ("call", "says"),
    [
        ({"args": "12"}, "args must be a tuple or list of positional arguments, got str"),
        ({"args": None}, "args must be a tuple or list of positional arguments, got NoneType"),
        ({"kwargs": [("x", 1)]}, "kwargs must be a dict, got list"),
        ({"kwargs": {1: 2}}, "kwargs keys must be str (argument names), got 1"),
    ],
)
def test_malformed_send_is_a_config_error(app: Corral, call: dict[str, Any], says: str) -> None:
    task = app.task(add)
    with pytest.raises(ConfigError) as caught:
        task.send(**call)
    assert str(caught.value) == f"{task.name}(): {says}"
    assert queued(app) == 0


@pytest.mark.parametrize("calls", [[(1, 2), (3, 4)], [((1,), {}, 3)], [((1, 2), {}), 5]])
def test_malformed_send_many_is_a_config_error(app: Corral, calls: list[Any]) -> None:
    task = app.task(add)
    with pytest.raises(ConfigError, match=r"send_many\(\): each call must be a pair"):
        task.send_many(calls)
    assert queued(app) == 0
