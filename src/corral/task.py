"""Task[P, R]: a function the app can run in a worker, with its options.

``Task`` keeps the decorated function's signature, so a type checker rejects
``add.delay("x")`` for ``def add(x: int, y: int)``. Calling the task runs the
function inline; ``delay``/``send``/``send_many`` enqueue it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from corral.options import TaskOptions
from corral.results import ResultHandle

if TYPE_CHECKING:
    from corral.app import Corral

__all__ = ["Call", "Task"]

P = ParamSpec("P")
R = TypeVar("R")

Call = tuple[Sequence[Any], Mapping[str, Any]]
"""One call for :meth:`Task.send_many`: ``(args, kwargs)``."""


class Task(Generic[P, R]):
    """A registered task. Create with ``@app.task``; never instantiate directly."""

    __slots__ = ("__wrapped__", "_app", "fn", "options", "signature")

    def __init__(self, app: Corral, fn: Callable[P, R], options: TaskOptions) -> None:
        self._app = app
        self.fn = fn
        self.options = options
        self.signature = inspect.signature(fn)
        self.__wrapped__ = fn

    @property
    def name(self) -> str:
        """The name workers know this task by (``module.function`` unless set)."""
        return self.options.name

    def __repr__(self) -> str:
        return f"<Task {self.name} queue={self.options.queue!r}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function here and now, like a plain call."""
        return self.fn(*args, **kwargs)

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> ResultHandle[R]:
        """Enqueue a call with the task's default options."""
        return self._app._enqueue_call(self, args, kwargs)

    def send(
        self,
        *,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        countdown_s: float | None = None,
        eta: datetime | None = None,
        priority: int | None = None,
        queue: str | None = None,
        task_id: str | None = None,
    ) -> ResultHandle[R]:
        """Enqueue a call with per-call options.

        ``countdown_s`` delays the first run; ``eta`` (timezone-aware) sets its
        time; ``priority`` and ``queue`` override the task's; ``task_id`` makes
        the send idempotent while that id is pending.
        """
        return self._app.enqueue(
            self.name,
            args=args,
            kwargs=kwargs or {},
            task=self,
            countdown_s=countdown_s,
            eta=eta,
            priority=priority,
            queue=queue,
            task_id=task_id,
        )

    def send_many(
        self,
        calls: Iterable[Call],
        *,
        countdown_s: float | None = None,
        priority: int | None = None,
        queue: str | None = None,
    ) -> list[ResultHandle[R]]:
        """Enqueue many calls in one broker round trip (one transaction)."""
        return self._app.enqueue_many(
            self, calls, countdown_s=countdown_s, priority=priority, queue=queue
        )
