"""Every error corral raises, under one root.

::

    CorralError
    ├── ConfigError              bad option, URL, config key or CLI argument
    │   └── UnknownTask          a task name the app does not know
    ├── CodecError
    │   ├── EncodeError          a value the codec cannot encode (raised in the caller, at send)
    │   └── DecodeError          bytes the codec cannot decode (corrupted or foreign message)
    ├── PayloadTooLarge          an encoded message above ``max_payload_bytes``
    ├── BrokerError
    │   └── BrokerUnavailable    the broker cannot be reached (or is locked) in time
    ├── SupervisorUnavailable    no ``corral run`` answers on the control socket
    ├── ResultError              what ``ResultHandle.get()`` raises
    │   ├── TaskFailed           the task raised; carries the remote type, message, traceback
    │   │   └── TimeLimitExceeded  the task ran past ``timeout_s`` and was killed
    │   ├── TaskRevoked          the task was revoked before it finished
    │   └── ResultTimeout        no result within ``timeout_s``
    └── SoftTimeLimitExceeded    raised *inside* a task that ran past ``soft_timeout_s``

Split by meaning: a broker that is down is not a task that failed is not a bad
argument. Messages say what happened and what to do next.
"""

from __future__ import annotations

__all__ = [
    "BrokerError",
    "BrokerUnavailable",
    "CodecError",
    "ConfigError",
    "CorralError",
    "DecodeError",
    "EncodeError",
    "PayloadTooLarge",
    "ResultError",
    "ResultTimeout",
    "SoftTimeLimitExceeded",
    "SupervisorUnavailable",
    "TaskFailed",
    "TaskRevoked",
    "TimeLimitExceeded",
    "UnknownTask",
]


class CorralError(Exception):
    """Root of every error corral raises."""


class ConfigError(CorralError):
    """An option, URL, config key or argument is invalid; the message names it."""


class UnknownTask(ConfigError):
    """A task name that the app has not registered."""


class CodecError(CorralError):
    """A value could not be encoded or decoded."""


class EncodeError(CodecError):
    """A value the codec cannot encode.

    ``path`` locates the offending value inside what was encoded, as a tuple of
    keys and indices; ``type_name`` is its type. The task layer uses both to name
    the argument (``send_sms(): argument 'meta'['path'] is a PosixPath ...``).
    """

    def __init__(
        self, message: str, *, path: tuple[str | int, ...] = (), type_name: str = ""
    ) -> None:
        super().__init__(message)
        self.path = path
        self.type_name = type_name


class DecodeError(CodecError):
    """Bytes the codec cannot decode: a corrupted or foreign message."""


class PayloadTooLarge(CorralError):
    """An encoded message is larger than the app's ``max_payload_bytes``."""


class BrokerError(CorralError):
    """The broker failed an operation."""


class BrokerUnavailable(BrokerError):
    """The broker cannot be reached, or stayed locked, within the timeout."""


class SupervisorUnavailable(CorralError):
    """No ``corral run`` answers on the control socket (``corral ctl``)."""


class ResultError(CorralError):
    """Base of what waiting for a task's result can raise."""


class TaskFailed(ResultError):
    """The task raised. Carries the remote exception's type name, message and traceback."""

    def __init__(self, task_id: str, *, type_name: str, message: str, traceback: str = "") -> None:
        super().__init__(f"task {task_id} failed: {type_name}: {message}")
        self.task_id = task_id
        self.type_name = type_name
        self.remote_message = message
        self.remote_traceback = traceback


class TimeLimitExceeded(TaskFailed):
    """The task ran past its hard time limit (``timeout_s``) and its process tree was killed."""


class TaskRevoked(ResultError):
    """The task was revoked before it finished."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id} was revoked")
        self.task_id = task_id


class ResultTimeout(ResultError):
    """No result arrived within the wait's ``timeout_s``."""

    def __init__(self, task_id: str, timeout_s: float) -> None:
        super().__init__(f"no result for task {task_id} within {timeout_s:g} s")
        self.task_id = task_id
        self.timeout_s = timeout_s


class SoftTimeLimitExceeded(CorralError):
    """Raised inside a task that ran past its ``soft_timeout_s``: clean up and return."""
