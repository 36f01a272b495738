"""Small builders shared by the broker contract tests."""

from __future__ import annotations

from collections.abc import Sequence

from corral.brokers.base import Broker, Delivery, Envelope, Settlement
from corral.results import TaskState


def envelope(task_id: str, **options: object) -> Envelope:
    """An envelope for task ``echo`` on queue ``default`` with a body naming the id.

    Its id counts as generated for this send (``new_id``), as the app's are, unless
    the test passes ``new_id=False`` to send a caller-chosen id.
    """
    fields: dict[str, object] = {
        "id": task_id,
        "task": "echo",
        "queue": "default",
        "body": f"body-{task_id}".encode(),
        "lease_s": 1.0,
        "new_id": True,
    }
    fields.update(options)
    return Envelope(**fields)  # type: ignore[arg-type]


def plain_envelope(task_id: str, **options: object) -> Envelope:
    """An envelope for task ``t`` on queue ``q`` with body ``b`` and a generated id."""
    fields: dict[str, object] = {"id": task_id, "task": "t", "queue": "q", "body": b"b"}
    fields["new_id"] = True
    fields.update(options)
    return Envelope(**fields)  # type: ignore[arg-type]


def send_ids(broker: Broker, ids: Sequence[str], **options: object) -> None:
    """Send one envelope per id, in one batch."""
    broker.send([envelope(task_id, **options) for task_id in ids])


def reserve_one(broker: Broker, queue: str = "default", owner: str = "w1") -> Delivery:
    """Reserve exactly one message (fails the test if there is none)."""
    got = broker.reserve([queue], 1, owner=owner)
    assert len(got) == 1, f"expected one delivery from {queue!r}, got {got}"
    return got[0]


def settle(
    broker: Broker, delivery: Delivery, state: TaskState, payload: bytes = b"", **options: object
) -> bool:
    """Settle one delivery; its bool."""
    outcome = Settlement(delivery.id, delivery.token, state, payload, **options)  # type: ignore[arg-type]
    return broker.settle([outcome])[0]


def drain_ids(broker: Broker, queues: Sequence[str] = ("default",)) -> list[str]:
    """Reserve everything deliverable now; the ids in delivery order."""
    return [d.id for d in broker.reserve(list(queues), 1000, owner="drain")]
