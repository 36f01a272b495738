"""The worker's configuration, declared once: the CLI flags are built from it."""

from __future__ import annotations

import os
from dataclasses import dataclass

from corral.errors import ConfigError

__all__ = ["WorkerConfig"]


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """How ``corral worker`` runs.

    ``prefetch`` is how many messages the main reserves beyond what its pool
    processes hold, per pool process; ``window`` is how many tasks one pool
    process holds at once (one running, the rest waiting in its pipe), growing to
    ``max_window`` while its tasks are quick.
    """

    app_ref: str
    concurrency: int = os.cpu_count() or 1
    queues: tuple[str, ...] = ("default",)
    prefetch: int = 4
    window: int = 2
    max_window: int = 32
    max_tasks_per_child: int = 0
    max_memory_per_child_mb: int = 0
    grace_s: float = 30.0
    log_level: str = "INFO"
    log_format: str = "text"
    heartbeat_s: float = 2.0
    containment: str = "auto"

    def __post_init__(self) -> None:
        for problem in self._problems():
            raise ConfigError(problem)

    def _problems(self) -> list[str]:
        problems = []
        if self.concurrency < 1:
            problems.append(f"--concurrency must be at least 1, got {self.concurrency}")
        if not self.queues or not all(q and not q.isspace() for q in self.queues):
            problems.append(f"--queues must name at least one queue, got {self.queues!r}")
        if self.prefetch < 0:
            problems.append(f"--prefetch must be >= 0, got {self.prefetch}")
        if self.max_tasks_per_child < 0:
            problems.append("--max-tasks-per-child must be >= 0 (0: no limit)")
        if self.max_memory_per_child_mb < 0:
            problems.append("--max-memory-per-child-mb must be >= 0 (0: no limit)")
        if self.containment not in ("auto", "cgroup", "subreaper"):
            problems.append(
                f"--containment must be auto, cgroup or subreaper, got {self.containment!r}"
            )
        if self.grace_s < 0:
            problems.append(f"--grace-s must be >= 0, got {self.grace_s}")
        return problems
