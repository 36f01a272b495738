"""Task options: declared once, validated once, with errors that name the option.

:class:`TaskOptions` is the single declaration: ``@app.task(...)`` keywords,
their defaults, their validation and the retry policy all come from it.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from corral.errors import ConfigError

__all__ = ["TaskOptions", "TaskOptionsKw", "backoff_delay_s"]

Leftovers = Literal["kill", "warn", "keep"]
MAX_PRIORITY = 255


class TaskOptionsKw(TypedDict, total=False):
    """The keyword arguments ``@app.task(...)`` accepts (for type checkers)."""

    name: str
    queue: str
    priority: int
    retries: int
    retry_backoff_s: float
    retry_backoff_max_s: float
    retry_jitter: bool
    retry_on: tuple[type[BaseException], ...]
    timeout_s: float | None
    soft_timeout_s: float | None
    lease_s: float
    result_ttl_s: float
    max_deliveries: int
    leftovers: Leftovers


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """How a task is routed, retried, limited and kept.

    ``retries`` is the number of runs after the first that an exception listed in
    ``retry_on`` may cause, each after an exponential backoff starting at
    ``retry_backoff_s``, capped at ``retry_backoff_max_s``, with full jitter when
    ``retry_jitter``. ``timeout_s`` is the hard limit (the task's process tree is
    killed), ``soft_timeout_s`` raises ``SoftTimeLimitExceeded`` inside the task.
    ``lease_s`` is how long a worker may go silent before the task runs elsewhere;
    ``max_deliveries`` bounds redeliveries after crashes (poison messages).
    """

    name: str
    queue: str = "default"
    priority: int = 0
    retries: int = 0
    retry_backoff_s: float = 1.0
    retry_backoff_max_s: float = 600.0
    retry_jitter: bool = True
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    timeout_s: float | None = None
    soft_timeout_s: float | None = None
    lease_s: float = 30.0
    result_ttl_s: float = 86_400.0
    max_deliveries: int = 5
    leftovers: Leftovers = "kill"

    @classmethod
    def build(cls, name: str, given: Mapping[str, Any]) -> TaskOptions:
        """Options for task ``name`` from user keywords; ConfigError names what is wrong."""
        valid = option_names()
        unknown = sorted(set(given) - valid)
        if unknown:
            raise ConfigError(
                f"{name}(): unknown task option {', '.join(map(repr, unknown))}; "
                f"valid options are: {', '.join(sorted(valid))}"
            )
        options = cls(**{"name": name, **given})
        options.validate()
        return options

    def validate(self) -> None:
        """Raise ConfigError naming the task and the option if a value is out of range."""
        for check in _CHECKS:
            problem = check(self)
            if problem:
                raise ConfigError(f"{self.name}(): {problem}")

    def replace(self, **changes: Any) -> TaskOptions:
        """A copy with ``changes`` applied and validated."""
        options = dataclasses.replace(self, **changes)
        options.validate()
        return options

    def retry_delay_s(self, attempt: int) -> float:
        """The wait before retry number ``attempt`` (1 for the first retry)."""
        return backoff_delay_s(
            attempt, self.retry_backoff_s, self.retry_backoff_max_s, self.retry_jitter
        )

    def should_retry(self, error: BaseException, *, attempts: int) -> bool:
        """True if ``error`` after ``attempts`` earlier retries earns another run."""
        return attempts < self.retries and isinstance(error, self.retry_on)


def backoff_delay_s(attempt: int, backoff_s: float, backoff_max_s: float, jitter: bool) -> float:
    """Exponential backoff for retry number ``attempt``: ``backoff_s * 2**(attempt-1)``,
    capped at ``backoff_max_s``; with ``jitter``, uniform in the upper half of that."""
    ceiling: float = min(backoff_max_s, backoff_s * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling) if jitter else ceiling


def option_names() -> frozenset[str]:
    """Every public option name."""
    return frozenset(f.name for f in dataclasses.fields(TaskOptions))


def _check_name(o: TaskOptions) -> str:
    if not o.name or not isinstance(o.name, str):
        return "option 'name' must be a non-empty str"
    return ""


def _check_queue(o: TaskOptions) -> str:
    if not isinstance(o.queue, str) or not o.queue or any(c.isspace() for c in o.queue):
        return f"option 'queue' must be a non-empty str without spaces, got {o.queue!r}"
    return ""


def _check_priority(o: TaskOptions) -> str:
    if not _is_int(o.priority) or not -MAX_PRIORITY <= o.priority <= MAX_PRIORITY:
        return f"option 'priority' must be an int from -255 to 255, got {o.priority!r}"
    return ""


def _check_counts(o: TaskOptions) -> str:
    if not _is_int(o.retries) or o.retries < 0:
        return f"option 'retries' must be an int >= 0, got {o.retries!r}"
    if not _is_int(o.max_deliveries) or o.max_deliveries < 1:
        return f"option 'max_deliveries' must be an int >= 1, got {o.max_deliveries!r}"
    return ""


def _check_durations(o: TaskOptions) -> str:
    for key in ("retry_backoff_s", "retry_backoff_max_s", "lease_s", "result_ttl_s"):
        value = getattr(o, key)
        if not _is_number(value) or value <= 0:
            return f"option {key!r} must be a number of seconds > 0, got {value!r}"
    if o.lease_s < 1:
        return f"option 'lease_s' must be at least 1 second, got {o.lease_s!r}"
    return ""


def _check_limits(o: TaskOptions) -> str:
    for key in ("timeout_s", "soft_timeout_s"):
        value = getattr(o, key)
        if value is not None and (not _is_number(value) or value <= 0):
            return f"option {key!r} must be None or a number of seconds > 0, got {value!r}"
    if o.timeout_s is not None and o.soft_timeout_s is not None and o.soft_timeout_s >= o.timeout_s:
        return (
            f"option 'soft_timeout_s' ({o.soft_timeout_s:g}) must be below 'timeout_s' "
            f"({o.timeout_s:g}), or the soft limit can never fire"
        )
    return ""


def _check_retry_on(o: TaskOptions) -> str:
    kinds = o.retry_on
    if not isinstance(kinds, tuple) or not all(
        isinstance(k, type) and issubclass(k, BaseException) for k in kinds
    ):
        return f"option 'retry_on' must be a tuple of exception types, got {kinds!r}"
    return ""


def _check_leftovers(o: TaskOptions) -> str:
    if o.leftovers not in ("kill", "warn", "keep"):
        return f"option 'leftovers' must be 'kill', 'warn' or 'keep', got {o.leftovers!r}"
    return ""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_CHECKS = (
    _check_name,
    _check_queue,
    _check_priority,
    _check_counts,
    _check_durations,
    _check_limits,
    _check_retry_on,
    _check_leftovers,
)
