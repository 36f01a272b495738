"""Corral: the task registry, the configuration and the sending side.

Constructing an app touches nothing: the broker connects on first use, in the
process that uses it (a forked child opens its own).
"""

from __future__ import annotations

import os
import reprlib
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from itertools import repeat
from typing import Any, ParamSpec, TypeVar, Unpack, overload

from corral.brokers.base import Broker, Envelope
from corral.errors import (
    ConfigError,
    PayloadTooLarge,
    ResultError,
    ResultTimeout,
    TaskFailed,
    TaskRevoked,
    TimeLimitExceeded,
    UnknownTask,
)
from corral.forks import current_pid
from corral.ids import new_task_id, new_task_ids
from corral.message import decode_error, encode_call, encode_calls
from corral.options import TaskOptions, TaskOptionsKw
from corral.results import ResultHandle, TaskState
from corral.serializers import Codec, get_codec
from corral.task import Call, Task

__all__ = ["DEFAULT_BROKER_URL", "Corral"]

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_BROKER_URL = "sqlite:///corral.db"
BROKER_URL_ENV = "CORRAL_BROKER_URL"


class Corral:
    """A task app: ``Corral("sqlite:///corral.db")`` or ``Corral(broker=SqliteBroker(path))``.

    ``broker`` is a URL or a :class:`~corral.brokers.base.Broker`; when omitted,
    ``$CORRAL_BROKER_URL``, else ``sqlite:///corral.db``. ``codec`` is
    ``"json"`` (default), ``"msgpack"`` or ``"pickle"`` (only if you trust every
    writer to the broker: unpickling runs their code). Messages larger than
    ``max_payload_bytes`` are refused at send.
    """

    def __init__(
        self,
        broker: str | Broker | None = None,
        *,
        codec: str = "json",
        max_payload_bytes: int = 1 << 20,
    ) -> None:
        if isinstance(broker, Broker):
            self._broker: Broker | None = broker
            self.broker_url = broker.url
        else:
            self._broker = None
            self.broker_url = broker or os.environ.get(BROKER_URL_ENV) or DEFAULT_BROKER_URL
            _check_url(self.broker_url)
        if not isinstance(max_payload_bytes, int) or max_payload_bytes < 1:
            raise ConfigError(f"max_payload_bytes must be an int > 0, got {max_payload_bytes!r}")
        self.codec: Codec = get_codec(codec)
        self.max_payload_bytes = max_payload_bytes
        self.tasks: dict[str, Task[Any, Any]] = {}
        self._broker_pid = current_pid()

    def __repr__(self) -> str:
        return f"<Corral {self.broker_url} tasks={len(self.tasks)}>"

    # -- the broker, opened lazily per process ----------------------------------
    @property
    def broker(self) -> Broker:
        """The broker, connected on first use in this process."""
        if self._broker is None or self._broker_pid != current_pid():
            from corral.brokers import broker_from_url

            self._broker = broker_from_url(self.broker_url)
            self._broker_pid = current_pid()
        return self._broker

    def close(self) -> None:
        """Close the broker connection (it reopens if used again)."""
        if self._broker is not None:
            self._broker.close()
            self._broker = None

    # -- registering tasks ------------------------------------------------------
    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(
        self, /, **options: Unpack[TaskOptionsKw]
    ) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(
        self, fn: Callable[P, R] | None = None, /, **options: Any
    ) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
        """Register a function as a task: ``@app.task`` or ``@app.task(queue="x", retries=3)``.

        Options are keyword-only; an unknown one raises ConfigError listing the
        valid ones (see :class:`~corral.options.TaskOptions`).
        """

        def register(func: Callable[P, R]) -> Task[P, R]:
            given = dict(options)
            name = given.pop("name", None) or task_name_of(func)
            task = Task(self, func, TaskOptions.build(name, given))
            if task.name in self.tasks and self.tasks[task.name].fn is not func:
                raise ConfigError(f"two tasks are named {task.name!r}; pass name=... to one")
            self.tasks[task.name] = task
            return task

        if fn is not None:
            if not callable(fn):
                raise ConfigError(
                    f"@app.task takes a function, got {fn!r}; task options are keyword-only, "
                    f"e.g. @app.task(queue='default', retries=3)"
                )
            return register(fn)
        return register

    def get_task(self, name: str) -> Task[Any, Any]:
        """The registered task called ``name``; UnknownTask lists the known ones."""
        try:
            return self.tasks[name]
        except KeyError:
            known = ", ".join(sorted(self.tasks)) or "none"
            raise UnknownTask(
                f"no task named {name!r} in this app (known tasks: {known}); "
                f"check the name or import the module that defines it"
            ) from None

    # -- sending ----------------------------------------------------------------
    def send(self, name: str, /, *args: Any, **kwargs: Any) -> ResultHandle[Any]:
        """Enqueue a task by name, for a task this process did not import."""
        return self.enqueue(name, args=args, kwargs=kwargs)

    def enqueue(
        self,
        name: str,
        *,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        task: Task[Any, Any] | None = None,
        countdown_s: float | None = None,
        eta: datetime | None = None,
        priority: int | None = None,
        queue: str | None = None,
        task_id: str | None = None,
    ) -> ResultHandle[Any]:
        """Enqueue one call of task ``name`` with per-call options (one round trip)."""
        options = _options_for(self, name, task, priority=priority, queue=queue)
        delay_s = _delay_s(name, countdown_s, eta)
        kwargs = kwargs or {}
        _check_call(options.name, args, kwargs)
        body = self._encode(options.name, task, args, kwargs)
        if task_id is None:
            envelope = _envelope(options, new_task_id(), body, delay_s, new_id=True)
        else:
            _check_task_id(options.name, task_id)
            envelope = _envelope(options, task_id, body, delay_s, new_id=False)
        self.broker.send((envelope,))
        return ResultHandle(self, envelope.id)

    def _enqueue_call(
        self, task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> ResultHandle[Any]:
        """Enqueue ``task(*args, **kwargs)`` with the task's own options: ``delay()``.

        ``args`` and ``kwargs`` come from a call (a tuple, a dict keyed by str), so
        :func:`_check_call` has nothing to find and is skipped on this hot path.
        """
        options = task.options
        body = self._encode(options.name, task, args, kwargs)
        envelope = _envelope(options, new_task_id(), body, 0.0, new_id=True)
        self.broker.send((envelope,))
        return ResultHandle(self, envelope.id)

    def enqueue_many(
        self,
        task: Task[Any, Any],
        calls: Iterable[Call],
        *,
        countdown_s: float | None = None,
        priority: int | None = None,
        queue: str | None = None,
    ) -> list[ResultHandle[Any]]:
        """Enqueue many calls of ``task`` in one transaction / round trip."""
        options = _options_for(self, task.name, task, priority=priority, queue=queue)
        delay_s = _delay_s(task.name, countdown_s, None)
        checked = _check_calls(options.name, calls)
        if not checked:
            return []
        bodies = encode_calls(self.codec, options.name, checked, signature=task.signature)
        if max(map(len, bodies)) > self.max_payload_bytes:
            for body in bodies:
                self._check_size(options.name, body)
        ids = new_task_ids(len(bodies))
        self.broker.send(_envelopes(options, ids, bodies, delay_s))
        return [ResultHandle(self, task_id) for task_id in ids]

    def _encode(
        self,
        name: str,
        task: Task[Any, Any] | None,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
    ) -> bytes:
        """The encoded call; EncodeError names the argument, PayloadTooLarge the size."""
        signature = task.signature if task is not None else None
        body = encode_call(self.codec, name, args, kwargs, signature=signature)
        self._check_size(name, body)
        return body

    def _check_size(self, name: str, body: bytes) -> None:
        if len(body) > self.max_payload_bytes:
            raise PayloadTooLarge(
                f"{name}(): the encoded call is {len(body):,} bytes, above "
                f"max_payload_bytes={self.max_payload_bytes:,}; store large data elsewhere "
                f"(a file, an object store) and pass its key"
            )

    # -- results ----------------------------------------------------------------
    def wait_result(self, task_id: str, *, timeout_s: float | None = None) -> Any:
        """Block until task ``task_id`` finishes; its result, or the error it ended with."""
        record = self.broker.wait_result(task_id, timeout_s)
        if record is None:
            raise ResultTimeout(task_id, timeout_s if timeout_s is not None else 0.0)
        if record.state is TaskState.SUCCEEDED:
            return self.codec.decode(record.payload)
        if record.state is TaskState.REVOKED:
            raise TaskRevoked(task_id)
        remote = decode_error(self.codec, record.payload)
        kind = TimeLimitExceeded if remote.type_name.endswith("TimeLimitExceeded") else TaskFailed
        raise kind(
            task_id, type_name=remote.type_name, message=remote.message, traceback=remote.traceback
        )

    def task_state(self, task_id: str) -> TaskState:
        """The task's state; ResultError if the broker does not know the id."""
        state = self.broker.state(task_id)
        if state is None:
            raise ResultError(
                f"task {task_id} is unknown to the broker: never sent here, "
                f"or its result expired (result_ttl_s)"
            )
        return state

    def revoke(self, task_id: str, *, terminate: bool = False) -> bool:
        """Revoke a pending task (or, with ``terminate``, kill it while it runs)."""
        return self.broker.revoke(task_id, terminate=terminate)


def task_name_of(fn: Callable[..., Any]) -> str:
    """``module.qualname``; a script run as ``__main__`` uses its module name instead."""
    module = fn.__module__
    if module == "__main__":
        main = sys.modules.get("__main__")
        spec = getattr(main, "__spec__", None)
        if spec is not None and spec.name:
            module = spec.name
        elif main is not None and getattr(main, "__file__", None):
            module = os.path.splitext(os.path.basename(str(main.__file__)))[0]
    return f"{module}.{fn.__qualname__}"


def _options_for(
    app: Corral,
    name: str,
    task: Task[Any, Any] | None,
    *,
    priority: int | None,
    queue: str | None,
) -> TaskOptions:
    if task is None:
        task = app.tasks.get(name)
    options = task.options if task is not None else TaskOptions(name=name)
    if priority is None and queue is None:
        return options
    changes: dict[str, Any] = {}
    if priority is not None:
        changes["priority"] = priority
    if queue is not None:
        changes["queue"] = queue
    return options.replace(**changes)


def _delay_s(name: str, countdown_s: float | None, eta: datetime | None) -> float:
    if countdown_s is not None and eta is not None:
        raise ConfigError(f"{name}(): pass countdown_s or eta, not both")
    if countdown_s is not None:
        if isinstance(countdown_s, bool) or not isinstance(countdown_s, (int, float)):
            raise ConfigError(f"{name}(): countdown_s must be a number of seconds")
        return max(0.0, float(countdown_s))
    if eta is not None:
        if not isinstance(eta, datetime) or eta.tzinfo is None:
            raise ConfigError(
                f"{name}(): eta must be a timezone-aware datetime "
                f"(e.g. datetime.now(timezone.utc) + timedelta(minutes=5))"
            )
        return max(0.0, eta.timestamp() - time.time())
    return 0.0


def _envelope(
    options: TaskOptions, task_id: str, body: bytes, delay_s: float, *, new_id: bool
) -> Envelope:
    return Envelope(
        task_id,
        options.name,
        options.queue,
        body,
        options.priority,
        delay_s,
        options.lease_s,
        options.max_deliveries,
        options.result_ttl_s,
        new_id,
    )


def _envelopes(
    options: TaskOptions, ids: list[str], bodies: list[bytes], delay_s: float
) -> list[Envelope]:
    """One envelope per id and body, for ids generated for this send."""
    fields = zip(
        ids,
        repeat(options.name),
        repeat(options.queue),
        bodies,
        repeat(options.priority),
        repeat(delay_s),
        repeat(options.lease_s),
        repeat(options.max_deliveries),
        repeat(options.result_ttl_s),
        repeat(True),  # new_id
        strict=False,  # the repeats are endless; ids and bodies have the same length
    )
    # Envelope._make over zipped fields costs a third less than Envelope(...) per message.
    return list(map(Envelope._make, fields))


def _check_task_id(name: str, task_id: object) -> None:
    if not isinstance(task_id, str) or not task_id:
        raise ConfigError(f"{name}(): task_id must be a non-empty str")


def _check_calls(name: str, calls: Iterable[Call]) -> list[Call]:
    """``calls`` as a list; ConfigError for the first that is not a well-formed pair."""
    checked = list(calls)
    for call in checked:
        # The usual ((args...), {}) is seen at a glance; anything else gets every check.
        if not (
            type(call) is tuple
            and len(call) == 2
            and type(call[0]) is tuple
            and type(call[1]) is dict
            and not call[1]
        ):
            _call_parts(name, call)
    return checked


def _call_parts(name: str, call: Call) -> Call:
    """``call`` as ``(args, kwargs)``; ConfigError if it is not such a pair of such parts."""
    if (
        not isinstance(call, (tuple, list))
        or len(call) != 2
        or not isinstance(call[0], (tuple, list))
    ):
        raise ConfigError(
            f"{name}.send_many(): each call must be a pair (args, kwargs), "
            f"e.g. ((1, 2), {{}}), got {reprlib.repr(call)}"
        )
    _check_call(name, call[0], call[1])
    return call[0], call[1]


def _check_call(name: str, args: object, kwargs: object) -> None:
    # A str is a Sequence too: args="12" would silently become two arguments, and a
    # non-str keyword would be encoded, then refused by every worker (a dead letter).
    if not isinstance(args, (tuple, list)):
        raise ConfigError(
            f"{name}(): args must be a tuple or list of positional arguments, "
            f"got {type(args).__name__}"
        )
    if type(kwargs) is not dict and not isinstance(kwargs, Mapping):
        raise ConfigError(f"{name}(): kwargs must be a dict, got {type(kwargs).__name__}")
    for key in kwargs:
        if not isinstance(key, str):
            raise ConfigError(f"{name}(): kwargs keys must be str (argument names), got {key!r}")


def _check_url(url: str) -> None:
    if not isinstance(url, str) or "://" not in url:
        raise ConfigError(
            f"broker URL {url!r} is not a URL; use e.g. 'sqlite:///corral.db' "
            f"or 'redis://localhost:6379/0'"
        )
