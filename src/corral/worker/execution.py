"""Running one task inside a pool process and turning what happened into an outcome.

Nothing a task does may kill the pool process's loop: a task that raises, a
result the codec cannot encode, a message that cannot be decoded or names an
unknown task, each becomes an outcome the worker main settles. A process forked
inside a task that returns or raises into this runner is ended here with
``os._exit`` (seeds/000: a double-forked grandchild unwound into Celery's worker
loop and became a second worker).
"""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass
from types import FrameType
from typing import Any

from corral.app import Corral
from corral.errors import DecodeError, EncodeError, SoftTimeLimitExceeded
from corral.exitcodes import ExitCode
from corral.message import Message, decode_call, encode_error, encode_remote_error
from corral.process import ForkGuard
from corral.serializers import sniff_codec
from corral.task import Task
from corral.worker import protocol

__all__ = ["Outcome", "execute"]

log = logging.getLogger("corral.worker")

FORK_GUARD = ForkGuard(exit_code=ExitCode.SOFTWARE)
"""Ends any process forked inside a task that returns or raises into this runner
(seeds/000). Installed by the pool process at start."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one task: ``kind`` is one of the protocol outcomes."""

    kind: str
    payload: bytes = b""
    delay_s: float = 0.0
    reason: str = ""


def execute(app: Corral, task_id: str, body: bytes, attempts: int) -> Outcome:
    """Decode, run and encode one task; never raises for anything the task does."""
    try:
        message = decode_call(app.codec, body)
    except DecodeError as error:
        return _dead(app, error, f"undecodable message: {_foreign_hint(app, body) or error}")
    task = app.tasks.get(message.task)
    if task is None:
        return _dead(
            app,
            LookupError(f"no task named {message.task!r} in this worker's app"),
            f"unknown task {message.task!r}: deploy the code that defines it, "
            f"then requeue from the dead letters",
        )
    try:
        value = _call(task, message)
    except BaseException as error:
        return _failure(app, task, error, attempts)
    try:
        return Outcome(protocol.OK, app.codec.encode(value))
    except EncodeError as error:
        problem = EncodeError(
            f"{task.name}() returned a value the {app.codec.name} codec cannot encode: {error}"
        )
        return Outcome(protocol.FAIL, encode_error(app.codec, problem), reason=str(problem))


def _call(task: Task[Any, Any], message: Message) -> Any:
    limit_s = task.options.soft_timeout_s
    if limit_s:
        signal.setitimer(signal.ITIMER_REAL, limit_s)
    try:
        with FORK_GUARD.task_scope(task.name):
            return task.fn(*message.args, **message.kwargs)
    finally:
        if limit_s:
            signal.setitimer(signal.ITIMER_REAL, 0)


def raise_soft_time_limit(signum: int, frame: FrameType | None) -> None:
    """SIGALRM handler installed in pool processes.

    The one handler that does more than record: the soft limit exists to
    interrupt the task's own code, and raising from the handler is the only way
    to do that in Python.
    """
    raise SoftTimeLimitExceeded("soft time limit exceeded (soft_timeout_s)")


def _failure(app: Corral, task: Task[Any, Any], error: BaseException, attempts: int) -> Outcome:
    payload = encode_error(app.codec, error)
    options = task.options
    if isinstance(error, Exception) and options.should_retry(error, attempts=attempts):
        return Outcome(protocol.RETRY, payload, delay_s=options.retry_delay_s(attempts + 1))
    kind = type(error).__name__
    if options.retries and isinstance(error, options.retry_on):
        reason = f"{kind} after {attempts + 1} runs: retries exhausted"
    else:
        reason = f"{kind}: not retried (retries={options.retries}, retry_on={_names(options)})"
    return Outcome(protocol.FAIL, payload, reason=reason)


def _names(options: Any) -> str:
    return ", ".join(kind.__name__ for kind in options.retry_on)


def _dead(app: Corral, error: BaseException, reason: str) -> Outcome:
    payload = encode_remote_error(app.codec, type(error).__name__, reason)
    return Outcome(protocol.DEAD, payload, reason=reason)


def _foreign_hint(app: Corral, body: bytes) -> str:
    try:
        found = sniff_codec(body)
    except Exception:
        return ""
    if found and found != app.codec.name:
        return (
            f"the message was encoded with {found}, but this app accepts "
            f"{app.codec.name} only; send it from an app with the same codec"
        )
    return ""
