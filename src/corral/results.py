"""Task states and the result handle returned by ``delay()`` / ``send()``.

A :class:`ResultHandle` is a plain value: a task id and a reference to the app
that sent it. It registers nothing, subscribes to nothing and defines no
``__del__``, so a client that enqueues forever without reading results keeps
flat memory (seeds/004: Celery's ``AsyncResult`` cycle + ``__del__`` leaked on
every ``delay()``).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from corral.app import Corral

__all__ = ["ResultHandle", "TaskState"]

R = TypeVar("R")


class TaskState(enum.Enum):
    """Where a task is in its life.

    QUEUED waits to be reserved; SCHEDULED waits for its countdown/ETA; RUNNING is
    leased by a worker; RETRYING waits for its next attempt after a failure;
    SUCCEEDED, FAILED, REVOKED and DEAD are final. DEAD means the message went to
    the dead letters without a normal failure (undecodable, unknown task, or
    delivered ``max_deliveries`` times to workers that died running it).
    """

    QUEUED = "queued"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REVOKED = "revoked"
    DEAD = "dead"

    @property
    def final(self) -> bool:
        """True when the task will not run again unless requeued by hand."""
        return self in _FINAL


_FINAL = frozenset({TaskState.SUCCEEDED, TaskState.FAILED, TaskState.REVOKED, TaskState.DEAD})


class ResultHandle(Generic[R]):
    """The id of a sent task, and the app to ask about it."""

    __slots__ = ("_app", "id")

    def __init__(self, app: Corral, task_id: str) -> None:
        self._app = app
        self.id = task_id

    def __repr__(self) -> str:
        return f"ResultHandle({self.id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ResultHandle) and other.id == self.id and other._app is self._app

    def __hash__(self) -> int:
        return hash(self.id)

    def get(self, *, timeout_s: float | None = None) -> R:
        """Wait for the task to finish and return its result.

        Raises :class:`~corral.errors.TaskFailed` (with the remote type, message
        and traceback), :class:`~corral.errors.TaskRevoked`, or
        :class:`~corral.errors.ResultTimeout` after ``timeout_s`` (``None`` waits
        forever).
        """
        value: R = self._app.wait_result(self.id, timeout_s=timeout_s)
        return value

    def status(self) -> TaskState:
        """The task's current state (one broker query)."""
        return self._app.task_state(self.id)

    def ready(self) -> bool:
        """True when the task has reached a final state."""
        return self.status().final

    def revoke(self, *, terminate: bool = False) -> bool:
        """Revoke the task; True if it was still pending (or running, with ``terminate``)."""
        return self._app.revoke(self.id, terminate=terminate)
