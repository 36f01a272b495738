"""corral: background tasks where no task is lost and no process strays.

::

    from corral import Corral
    app = Corral("sqlite:///corral.db")

    @app.task(retries=3)
    def add(x: int, y: int) -> int:
        return x + y

    add.delay(1, 2).get(timeout_s=10)
"""

from corral.app import Corral
from corral.errors import (
    BrokerError,
    BrokerUnavailable,
    CodecError,
    ConfigError,
    CorralError,
    DecodeError,
    EncodeError,
    PayloadTooLarge,
    ResultError,
    ResultTimeout,
    SoftTimeLimitExceeded,
    SupervisorUnavailable,
    TaskFailed,
    TaskRevoked,
    TimeLimitExceeded,
    UnknownTask,
)
from corral.exitcodes import ExitCode
from corral.listen import listen_socket, notify_ready
from corral.options import TaskOptions
from corral.results import ResultHandle, TaskState
from corral.spawn import detach, spawn
from corral.task import Task

__all__ = [
    "BrokerError",
    "BrokerUnavailable",
    "CodecError",
    "ConfigError",
    "Corral",
    "CorralError",
    "DecodeError",
    "EncodeError",
    "ExitCode",
    "PayloadTooLarge",
    "ResultError",
    "ResultHandle",
    "ResultTimeout",
    "SoftTimeLimitExceeded",
    "SupervisorUnavailable",
    "Task",
    "TaskFailed",
    "TaskOptions",
    "TaskRevoked",
    "TaskState",
    "TimeLimitExceeded",
    "UnknownTask",
    "detach",
    "listen_socket",
    "notify_ready",
    "spawn",
]
