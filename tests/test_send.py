"""What the app hands the broker: envelopes from delay(), send() and send_many()."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from corral import ConfigError, Corral, TaskState
from corral.brokers.base import Envelope
from corral.brokers.sqlite import SqliteBroker
from tests.apps import api_app


class RecordingBroker(SqliteBroker):
    """A real SQLite broker that keeps every batch it was sent."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.batches: list[list[Envelope]] = []

    def send(self, envelopes: Sequence[Envelope]) -> None:
        self.batches.append(list(envelopes))
        super().send(envelopes)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RecordingBroker]:
    opened = RecordingBroker(tmp_path / "t.db")
    yield opened
    opened.close()


@pytest.fixture
def app(broker: RecordingBroker) -> Corral:
    return Corral(broker=broker)


def test_delay_sends_one_envelope_with_the_tasks_options(
    app: Corral, broker: RecordingBroker
) -> None:
    add = app.task(queue="maths", priority=3, lease_s=7.0, max_deliveries=2, result_ttl_s=60.0)(
        api_app.add
    )
    handle = add.delay(1, y=2)
    [[sent]] = broker.batches
    assert sent == Envelope(
        id=handle.id,
        task=add.name,
        queue="maths",
        body=app.codec.encode([add.name, [1], {"y": 2}]),
        priority=3,
        delay_s=0.0,
        lease_s=7.0,
        max_deliveries=2,
        result_ttl_s=60.0,
        new_id=True,
    )
    assert len(handle.id) == 32


def test_only_a_caller_chosen_id_is_not_new(app: Corral, broker: RecordingBroker) -> None:
    add = app.task(api_app.add)
    add.send(args=(1, 2), task_id="mine")
    add.send(args=(1, 2))
    app.send(add.name, 1, 2)
    add.send_many([((1, 2), {})])
    sent = [envelope for batch in broker.batches for envelope in batch]
    assert [(e.id == "mine", e.new_id) for e in sent] == [
        (True, False),
        (False, True),
        (False, True),
        (False, True),
    ]


def test_send_many_envelopes_share_the_options_and_countdown(
    app: Corral, broker: RecordingBroker
) -> None:
    add = app.task(queue="maths", lease_s=9.0)(api_app.add)
    handles = add.send_many([((i, i), {}) for i in range(250)], countdown_s=30, priority=4)
    [sent] = broker.batches
    assert [e.id for e in sent] == [h.id for h in handles]
    assert len({e.id for e in sent}) == 250
    assert {(e.task, e.queue, e.priority, e.delay_s, e.lease_s, e.new_id) for e in sent} == {
        (add.name, "maths", 4, 30.0, 9.0, True)
    }
    assert [app.codec.decode(e.body) for e in sent] == [[add.name, [i, i], {}] for i in range(250)]
    assert {h.status() for h in handles} == {TaskState.SCHEDULED}


def test_send_many_takes_any_well_formed_calls(app: Corral, broker: RecordingBroker) -> None:
    add = app.task(api_app.add)
    calls = iter([[[1, 2], {}], ((), OrderedDict(x=3, y=4)), ([5], {"y": 6}), ((7, 8), {})])
    handles = add.send_many(calls)  # type: ignore[arg-type]
    [sent] = broker.batches
    assert [app.codec.decode(e.body)[1:] for e in sent] == [
        [[1, 2], {}],
        [[], {"x": 3, "y": 4}],
        [[5], {"y": 6}],
        [[7, 8], {}],
    ]
    assert [h.status() for h in handles] == [TaskState.QUEUED] * 4


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (((1,), {2: 3}), "kwargs keys must be str (argument names), got 2"),
        (((1,), [("x", 1)]), "kwargs must be a dict, got list"),
        (("12", {}), "each call must be a pair (args, kwargs)"),
    ],
)
def test_send_many_checks_every_call_before_sending_any(
    app: Corral, broker: RecordingBroker, call: object, says: str
) -> None:
    add = app.task(api_app.add)
    with pytest.raises(ConfigError) as caught:
        add.send_many([((1, 2), {}), call])  # type: ignore[list-item]
    assert says in str(caught.value)
    assert broker.batches == []


def test_envelopes_are_immutable_values() -> None:
    sent = Envelope(id="a", task="t", queue="q", body=b"b")
    with pytest.raises(AttributeError):
        sent.id = "b"  # type: ignore[misc]
    assert (sent.priority, sent.delay_s, sent.new_id) == (0, 0.0, False)
    assert sent == Envelope(id="a", task="t", queue="q", body=b"b")
    assert hash(sent) == hash(Envelope(id="a", task="t", queue="q", body=b"b"))
